"""One hook call against a real server on loopback: a yes, a no (never retried), a failing hook
retried until it answers, one that hangs cut at its deadline each attempt, and an address the
egress policy refuses answered no without a request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from delivery.analysis import hook
from delivery.analysis.egress import Egress
from tests.analysis_egress import POLICY
from tests.loopback import Quiet, serving

BODY = {"name": "web", "namespace": "shop", "revision": "abc", "metadata": {"cmd": "hey -z 1m"}}


class Server:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, list[Any]] = {}
        self.url = ""

    def seen(self, path: str) -> list[Any]:
        with self.lock:
            return list(self.calls.get(path, ()))


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(Quiet):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                calls = state.calls.setdefault(self.path, [])
                calls.append({"body": body, "auth": self.headers.get("Authorization")})
                count = len(calls)
            if self.path == "/hang":
                time.sleep(5)
            status = {"/yes": 200, "/no": 403, "/flaky": 503 if count < 3 else 202}.get(self.path, 404)
            answer = b"not approved yet\n" if status == 403 else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    with serving(Handler) as url:
        state.url = url
        yield state


async def _call(url: str, retries: int = 0, timeout: float = 2.0, egress: Egress = POLICY) -> hook.Reply:
    return await hook.call(
        "hook h",
        url,
        BODY,
        timeout=timeout,
        retries=retries,
        headers={"Authorization": "Bearer s3cret"},
        egress=egress,
        backoff=0.05,
    )


async def test_a_2xx_is_a_yes_and_the_hook_receives_the_body_and_headers(server: Server) -> None:
    reply = await _call(server.url + "/yes")
    assert reply == hook.Reply(True, "HTTP 200")
    assert server.seen("/yes") == [{"body": BODY, "auth": "Bearer s3cret"}]


async def test_a_no_is_final_and_quoted(server: Server) -> None:
    reply = await _call(server.url + "/no", retries=3)
    assert reply == hook.Reply(False, "HTTP 403: not approved yet")
    assert len(server.seen("/no")) == 1  # a definite no is not asked again


async def test_a_failing_hook_is_retried_until_it_answers(server: Server) -> None:
    assert await _call(server.url + "/flaky", retries=1) == hook.Reply(False, "HTTP 503 (2 attempts)")
    assert await _call(server.url + "/flaky", retries=2) == hook.Reply(True, "HTTP 202")
    assert len(server.seen("/flaky")) == 3


async def test_a_hanging_hook_is_cut_at_its_deadline_on_every_attempt(server: Server) -> None:
    started = time.monotonic()
    reply = await _call(server.url + "/hang", retries=1, timeout=0.5)
    assert not reply.yes
    assert "did not answer in full within 0.5s" in reply.detail
    assert reply.detail.endswith("(2 attempts)")
    assert time.monotonic() - started < 2.5  # two 0.5 s attempts and a pause, not 5 s each


async def test_the_egress_policy_refuses_without_a_request(server: Server) -> None:
    reply = await _call(server.url + "/yes", retries=3, egress=Egress())
    assert not reply.yes
    assert "refused by the egress rule loopback" in reply.detail
    assert server.seen("/yes") == []
