"""Notifications: a real HTTP server on loopback receives the chosen transitions of a canary, as JSON
and in Slack's form; a failing hook is retried, and a hanging one never holds the rollout back.
The controller logs JSON meanwhile, each reconcile's lines naming the Rollout and revision."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from delivery.machine import Reason
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, event_objects, get, in_shard, rollout, wait_for
from tests.waiting import eventually

SHARD = "notify"
CHOSEN = (Reason.PAUSED, Reason.PROMOTED, Reason.COMPLETED)
STRATEGY = {
    "canary": {
        "steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}, {"setWeight": 75}],
        "scaleDownDelaySeconds": 0,
    }
}


@dataclass
class Hooks:
    """What the loopback server received. /json fails each message's first attempt with 503;
    /slack hangs until `released`."""

    json: list[dict[str, Any]] = field(default_factory=list)
    slack: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    received = Hooks()
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/slack":
                received.released.wait(timeout=120)
            with received.lock:
                if self.path == "/json" and json.dumps(body, sort_keys=True) not in seen:
                    seen.add(json.dumps(body, sort_keys=True))
                    received.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                (received.json if self.path == "/json" else received.slack).append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    received.released.set()
    server.shutdown()
    thread.join()


def slack_texts(hooks: Hooks) -> list[str]:
    with hooks.lock:
        return list(dict.fromkeys(message["text"] for message in hooks.slack))


def test_chosen_transitions_reach_the_hooks_without_holding_the_rollout(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path, hooks: Hooks
) -> None:
    controller = Controller.of_shard(
        sandbox,
        tmp_path / "delivery.log",
        SHARD,
        f"--notify-webhook={hooks.url}/json",
        f"--notify-slack={hooks.url}/slack",
        "--notify-reasons=" + ",".join(CHOSEN),
        "--log-format=json",
        namespace=namespace,
    )
    controller.start()
    try:
        web = in_shard(rollout("web", namespace, "web:1", STRATEGY), SHARD)
        apply(sandbox, web)
        wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy")
        web["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
        apply(sandbox, web)
        new = template_hash(web["spec"]["template"])
        wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy", stableRevision=new)
        with hooks.lock:
            assert hooks.slack == []  # still hanging: the rollout went on regardless
        hooks.released.set()

        expected = [Reason.COMPLETED, Reason.PAUSED, Reason.PROMOTED, Reason.COMPLETED]
        eventually(lambda: len(hooks.json) == len(expected), timeout=60, what="every JSON message")
        # A hanging attempt the client gave up on (10s) is retried, and lands too once released.
        eventually(lambda: len(slack_texts(hooks)) == len(expected), timeout=60, what="every Slack message")
        assert [message["reason"] for message in hooks.json] == expected
        assert hooks.refused == len(expected)  # each was refused once, then retried
        last = hooks.json[-1]
        assert (last["namespace"], last["name"], last["phase"], last["revision"]) == (
            namespace,
            "web",
            "Healthy",
            new,
        )
        texts = slack_texts(hooks)
        assert all(f"{namespace}/web" in text for text in texts)
        assert [[reason for reason in CHOSEN if f"*{reason}*" in text] for text in texts] == [
            [reason] for reason in expected
        ]
        lines = [json.loads(line) for line in controller.log.read_text().splitlines() if line.startswith("{")]
        about = {(line.get("object"), line.get("revision")) for line in lines if "->" in line["message"]}
        assert (f"{namespace}/web", new) in about  # the transitions of the release, with their revision
    finally:
        controller.stop()


@pytest.mark.faults
def test_a_rollout_created_again_under_its_name_has_all_its_events_and_notifications(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path, hooks: Hooks
) -> None:
    """Events are named by the Rollout's uid too: the second Rollout's transitions count from 1
    again, and would otherwise be taken as already reported (409) and never told."""
    hooks.released.set()
    controller = Controller.of_shard(
        sandbox,
        tmp_path / "delivery.log",
        SHARD,
        f"--notify-webhook={hooks.url}/json",
        "--notify-reasons=" + ",".join(CHOSEN),
        namespace=namespace,
    )
    controller.start()
    try:
        web = in_shard(rollout("web", namespace, "web:1", STRATEGY), SHARD)
        uids = []
        for _ in range(2):
            apply(sandbox, web)
            wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy")
            uids.append(get(sandbox, "rollout", "web", namespace)["metadata"]["uid"])
            sandbox.kubectl_run("delete", "rollout", "web", "-n", namespace, "--wait=true")
        assert uids[0] != uids[1]
        by_uid = {
            uid: [
                e["reason"]
                for e in event_objects(sandbox, "web", namespace)
                if e["involvedObject"]["uid"] == uid
            ]
            for uid in uids
        }
        assert by_uid[uids[0]] == by_uid[uids[1]]
        assert by_uid[uids[0]]  # the first release's Events, each Rollout its own
        eventually(lambda: len(hooks.json) == 2, timeout=30, what="a notification for each Rollout")
        assert [message["reason"] for message in hooks.json] == [Reason.COMPLETED, Reason.COMPLETED]
    finally:
        controller.stop()
