"""Our load balancer service's REST contract (docs/components.md, "The luoji-slb load balancer"),
served for real on loopback: tests and the demo talk HTTP to it exactly as the controller talks to
the real one.

It keeps its load balancers in memory and can misbehave on demand: fail the next N requests
with a status, answer slowly, or drop the connection, so the client's retries are exercised
against a real socket. Every request is recorded with its time.

Run alone: python -m tests.fakes.lb_server [--port 8480]
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/v1/loadbalancers"
TOKEN_HEADER = "X-Client-Token"


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    at: float
    method: str
    path: str
    token: str | None
    body: Any
    status: int


@dataclass
class Misbehaviour:
    fail_next: int = 0
    fail_status: int = 500
    fail_methods: frozenset[str] | None = None  # None: every method
    delay: float = 0.0
    drop_next: int = 0  # do the work, then close the connection without answering

    def applies(self, method: str) -> bool:
        return self.fail_methods is None or method in self.fail_methods


@dataclass
class State:
    balancers: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_token: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    misbehaviour: Misbehaviour = field(default_factory=Misbehaviour)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class Handler(BaseHTTPRequestHandler):
    server: LoadBalancerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded in `seen` instead."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        state = self.server.state
        with state.lock:
            trouble = state.misbehaviour
            delay = trouble.delay
            drop = trouble.drop_next > 0 and trouble.applies(method)
            fail = not drop and trouble.fail_next > 0 and trouble.applies(method)
            if drop:
                trouble.drop_next -= 1
            if fail:
                trouble.fail_next -= 1
        if delay:
            time.sleep(delay)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        url = urlsplit(self.path)
        token = self.headers.get(TOKEN_HEADER)
        if fail:
            status, answer = trouble.fail_status, _error("Unavailable", "failing on purpose")
        else:
            with state.lock:
                status, answer = self._route(method, url.path, parse_qs(url.query), token, body)
        if drop:  # the work is done, the answer lost: what a timeout looks like to the client
            self._record(method, url.path, token, body, 0)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._record(method, url.path, token, body, status)
        self._answer(status, answer)

    def _record(self, method: str, path: str, token: str | None, body: Any, status: int) -> None:
        state = self.server.state
        with state.lock:
            state.seen.append(Seen(time.monotonic(), method, path, token, body, status))

    def _answer(self, status: int, answer: Any) -> None:
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a timeout): nothing to tell

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], token: str | None, body: Any
    ) -> tuple[int, Any]:
        if not path.startswith(PREFIX):
            return 404, _error("NotFound", f"no route {path}")
        parts = path.removeprefix(PREFIX).strip("/").split("/")
        if parts == [""]:
            return self._collection(method, query, token, body)
        return self._item(method, parts[0], parts[1:], body)

    def _collection(
        self, method: str, query: dict[str, list[str]], token: str | None, body: Any
    ) -> tuple[int, Any]:
        state = self.server.state
        if method == "POST":
            return self._create(token, body)
        if method != "GET":
            return 405, _error("MethodNotAllowed", method)
        wanted = query.get("clientToken", [None])[0]
        ids = (
            list(state.balancers)
            if wanted is None
            else [state.by_token[wanted]]
            if wanted in state.by_token
            else []
        )
        return 200, {"items": [state.balancers[i] for i in ids]}

    def _item(self, method: str, balancer_id: str, rest: list[str], body: Any) -> tuple[int, Any]:
        state = self.server.state
        balancer = state.balancers.get(balancer_id)
        if balancer is None:
            return 404, _error("NotFound", f"load balancer {balancer_id} not found")
        if (method, rest) == ("GET", []):
            return 200, balancer
        if (method, rest) == ("DELETE", []):
            del state.balancers[balancer_id]
            del state.by_token[balancer["clientToken"]]
            return 204, None
        if (method, rest) == ("PUT", ["backends"]):
            return self._bind(balancer, body)
        return 405, _error("MethodNotAllowed", f"{method} {'/'.join(rest)}")

    def _create(self, token: str | None, body: Any) -> tuple[int, Any]:
        state = self.server.state
        if not token:
            return 400, _error("ClientTokenRequired", f"header {TOKEN_HEADER} is required")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            return 400, _error("InvalidBody", "name is required")
        if token in state.by_token:
            existing = state.balancers[state.by_token[token]]
            if existing["name"] != body["name"]:
                return 409, _error("ClientTokenReused", f"token {token} created {existing['name']}")
            return 200, existing
        number = next(state.ids)
        balancer = {
            "id": f"lb-{number:06d}",
            "name": body["name"],
            "labels": body.get("labels") or {},
            "clientToken": token,
            "address": f"10.200.{number // 250}.{number % 250 + 1}",
            "listeners": [],
            "backends": [],
        }
        state.balancers[balancer["id"]] = balancer
        state.by_token[token] = balancer["id"]
        return 201, balancer

    def _bind(self, balancer: dict[str, Any], body: Any) -> tuple[int, Any]:
        try:
            listeners = [
                {"port": int(x["port"]), "protocol": str(x["protocol"]), "backendPort": int(x["backendPort"])}
                for x in body["listeners"]
            ]
            backends = [{"address": str(x["address"])} for x in body["backends"]]
        except (KeyError, TypeError, ValueError) as error:
            return 400, _error("InvalidBody", f"listeners and backends: {error!r}")
        balancer["listeners"] = listeners
        balancer["backends"] = backends
        return 200, balancer


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class LoadBalancerServer(ThreadingHTTPServer):
    """`with LoadBalancerServer() as lb:` serves on `lb.url` in a thread until the block ends."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = State()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="lb-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LoadBalancerServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()

    def misbehave(
        self,
        *,
        fail_next: int = 0,
        status: int = 500,
        methods: frozenset[str] | None = None,
        delay: float = 0.0,
        drop_next: int = 0,
    ) -> None:
        with self.state.lock:
            self.state.misbehaviour = Misbehaviour(fail_next, status, methods, delay, drop_next)

    def balancers(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [json.loads(json.dumps(b)) for b in self.state.balancers.values()]

    def seen(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.seen)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--port", type=int, default=8480)
    port = arguments.parse_args().port
    with LoadBalancerServer(port) as server:
        print(f"load balancer service at {server.url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
