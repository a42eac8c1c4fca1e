"""Analysis reaches only what the egress policy allows, and reads a Secret only with its consent:
a controller of its own shard, allowed one loopback port, measures web metrics at the metadata
endpoint, at its apiserver, at another loopback port and at `localhost` (resolved for real), and
with a header from an unlabelled Secret; each is an error measurement naming its rule, in the
status and in an Event, and nothing reaches the other port. The same check with a labelled Secret,
at the allowed port, promotes."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from delivery.analysis.run import SECRET_CONSENT_LABEL
from delivery.machine import Reason
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, events, in_shard, rollout, status, wait_for
from tests.waiting import eventually

SHARD = "egress"
TOKEN = "Bearer egress-s3cret"  # a made-up credential
STRATEGY = {
    "canary": {
        "steps": [{"setWeight": 50}, {"analysis": {"templates": [{"templateName": "checks"}]}}],
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
    }
}


@dataclass
class Server:
    """A loopback HTTP server: `{"ok": true}` to a request with TOKEN; the requests it received."""

    url: str = ""
    seen: list[str] = field(default_factory=list)


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    """The allowed server, and one on another loopback port, outside the policy."""
    made: list[tuple[Server, ThreadingHTTPServer, threading.Thread]] = []
    for _ in range(2):
        state = Server()

        class Handler(BaseHTTPRequestHandler):
            server_state = state

            def do_GET(self) -> None:
                self.server_state.seen.append(self.path)
                ok = self.headers.get("Authorization") == TOKEN
                body = json.dumps({"ok": ok}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        state.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        made.append((state, server, thread))
    yield made[0][0], made[1][0]
    for _, server, thread in made:
        server.shutdown()
        server.server_close()
        thread.join()


def secret(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"authorization": base64.b64encode(TOKEN.encode()).decode()},
    }


def metric(name: str, url: str, token_secret: str | None = None) -> dict[str, Any]:
    web: dict[str, Any] = {"url": url, "jsonPath": "{$.ok}", "timeoutSeconds": 5}
    if token_secret:
        ref = {"secretKeyRef": {"name": token_secret, "key": "authorization"}}
        web["headers"] = [{"name": "Authorization", "valueFrom": ref}]
    return {
        "name": name,
        "interval": "2s",
        "count": 2,
        "consecutiveErrorLimit": 2,
        "successCondition": "result == true",
        "provider": {"web": web},
    }


def template(namespace: str, *metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "checks", "namespace": namespace},
        "spec": {"metrics": list(metrics)},
    }


def sharded(name: str, namespace: str, image: str) -> dict[str, Any]:
    return in_shard(rollout(name, namespace, image, STRATEGY, replicas=2), SHARD)


def first_messages(sandbox: Sandbox, name: str, namespace: str, metrics: int) -> dict[str, str] | None:
    """Each metric's first measurement's message, once every metric has one."""
    history = status(sandbox, name, namespace).get("analysisHistory") or []
    if not history:
        return None
    taken = {m["name"]: m["measurements"][0] for m in history[-1]["metrics"] if m.get("measurements")}
    if len(taken) < metrics:
        return None
    assert all(measurement["phase"] == "Error" for measurement in taken.values()), taken
    return {name: measurement["message"] for name, measurement in taken.items()}


def measurement_errors(sandbox: Sandbox, namespace: str, at_least: int) -> list[str] | None:
    found = [
        message for reason, message in events(sandbox, "web", namespace) if reason == Reason.MEASUREMENT_ERROR
    ]
    return found if len(found) >= at_least else None


def test_analysis_reaches_only_what_the_policy_allows_and_secrets_only_with_consent(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    allowed, outside = servers
    allowed_port = allowed.url.rsplit(":", 1)[1]
    outside_port = outside.url.rsplit(":", 1)[1]
    apiserver = sandbox.server.removeprefix("https://")
    controller = Controller.of_shard(
        sandbox,
        tmp_path / "delivery.log",
        SHARD,
        f"--analysis-allow=127.0.0.1:{allowed_port}",
        namespace=namespace,
    )
    controller.start()
    try:
        refused = template(
            namespace,
            metric("metadata", "http://169.254.169.254/latest/meta-data/"),
            metric("apiserver", f"{sandbox.server}/api/v1/secrets"),
            metric("other-port", f"{outside.url}/admin"),
            metric("localhost", f"http://localhost:{outside_port}/admin"),
            metric("unlabelled", f"{allowed.url}/health", token_secret="plain-token"),
        )
        apply(sandbox, secret("plain-token", namespace, {}), refused, sharded("web", namespace, "web:1"))
        wait_for(sandbox, "web", namespace, phase="Healthy")
        apply(sandbox, sharded("web", namespace, "web:2"))
        messages = eventually(
            lambda: first_messages(sandbox, "web", namespace, 5), timeout=60, what="a measurement of each"
        )
        assert messages["metadata"].endswith(
            "169.254.169.254 is refused by the egress rule link-local (169.254.0.0/16)"
        )
        assert messages["apiserver"].endswith(
            f"{apiserver} is refused by the egress rule apiserver ({apiserver})"
        )
        assert messages["other-port"].endswith(
            "127.0.0.1 is refused by the egress rule loopback (127.0.0.0/8)"
        )
        assert re.search(
            r"localhost resolves to (127\.0\.0\.1|::1), which is refused by the egress rule loopback",
            messages["localhost"],
        ), messages["localhost"]
        assert messages["unlabelled"] == (
            f"header Authorization: Secret plain-token is not labelled {SECRET_CONSENT_LABEL}=true, "
            "so analysis may not read it (label it to consent)"
        )
        errors = eventually(
            lambda: measurement_errors(sandbox, namespace, 5), timeout=30, what="an Event per refused metric"
        )
        assert any("egress rule link-local" in message for message in errors)
        assert not any("egress-s3cret" in message for message in errors)
        assert outside.seen == []  # refused before any connection
        assert allowed.seen == []  # the unlabelled Secret's header was never sent

        sandbox.kubectl_run("delete", "rollout", "web", "-n", namespace, "--wait=true")
        consenting = template(namespace, metric("labelled", f"{allowed.url}/health", token_secret="token"))
        labels = {SECRET_CONSENT_LABEL: "true"}
        apply(sandbox, secret("token", namespace, labels), consenting, sharded("ok", namespace, "web:1"))
        wait_for(sandbox, "ok", namespace, phase="Healthy")
        second = sharded("ok", namespace, "web:2")
        apply(sandbox, second)
        stable = template_hash(second["spec"]["template"])
        promoted = wait_for(sandbox, "ok", namespace, 90, phase="Healthy", stableRevision=stable)
        measurement = promoted["analysisHistory"][-1]["metrics"][0]["measurements"][-1]
        assert (measurement["phase"], measurement["value"]) == ("Successful", "true")
        assert allowed.seen  # the allowed port, with the labelled Secret's value
    finally:
        controller.stop()
