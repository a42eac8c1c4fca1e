"""The web provider against a real HTTP server on loopback: a header read from a Secret, a JSON path
into the answer; a healthy answer promotes, an unhealthy one aborts and says the value."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from delivery.analysis.run import SECRET_CONSENT_LABEL
from delivery.machine import Reason
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests import loopback
from tests.controller import Controller
from tests.rollouts import apply, events, rollout, wait_for

TOKEN = "Bearer s3cret"  # a made-up credential


@dataclass
class Health:
    """What the health endpoint answers, and the Authorization headers it was sent."""

    ok: bool = True
    seen: list[str] = field(default_factory=list)


@pytest.fixture
def health() -> Iterator[tuple[Health, str]]:
    state = Health()

    class Handler(loopback.Quiet):
        def do_GET(self) -> None:
            state.seen.append(self.headers.get("Authorization", ""))
            if self.headers.get("Authorization") != TOKEN:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"data": {"ok": state.ok, "checks": 3}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with loopback.serving(Handler) as url:
        yield state, url


def test_a_web_check_with_a_secret_header_gates_the_canary(
    sandbox: Sandbox, namespace: str, controller: Controller, health: tuple[Health, str]
) -> None:
    state, base = health
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        # Read for analysis only with this consent (delivery/analysis/run.py).
        "metadata": {
            "name": "health-token",
            "namespace": namespace,
            "labels": {SECRET_CONSENT_LABEL: "true"},
        },
        "data": {"authorization": base64.b64encode(TOKEN.encode()).decode()},
    }
    check = {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "health", "namespace": namespace},
        "spec": {
            "args": [{"name": "base"}],
            "metrics": [
                {
                    "name": "healthy",
                    "successCondition": "result == true",
                    "provider": {
                        "web": {
                            "url": "{{args.base}}/health?rollout={{args.rollout}}",
                            "headers": [
                                {
                                    "name": "Authorization",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "health-token", "key": "authorization"}
                                    },
                                }
                            ],
                            "jsonPath": "{$.data.ok}",
                            "timeoutSeconds": 5,
                        }
                    },
                }
            ],
        },
    }
    strategy = {
        "canary": {
            "steps": [
                {"setWeight": 50},
                {
                    "analysis": {
                        "templates": [{"templateName": "health"}],
                        "args": [{"name": "base", "value": base}],
                    }
                },
            ],
            "scaleDownDelaySeconds": 0,
            "abortScaleDownDelaySeconds": 0,
        }
    }
    apply(sandbox, secret, check, rollout("web", namespace, "web:1", strategy, replicas=2))
    wait_for(sandbox, "web", namespace, phase="Healthy")

    second = rollout("web", namespace, "web:2", strategy, replicas=2)
    apply(sandbox, second)
    promoted = wait_for(
        sandbox,
        "web",
        namespace,
        120,
        phase="Healthy",
        stableRevision=template_hash(second["spec"]["template"]),
    )
    measurement = promoted["analysisHistory"][-1]["metrics"][0]["measurements"][-1]
    assert (measurement["phase"], measurement["value"]) == ("Successful", "true")
    assert state.seen == [TOKEN]  # one measurement, with the Secret's value

    state.ok = False
    third = rollout("web", namespace, "web:3", strategy, replicas=2)
    apply(sandbox, third)
    aborted = wait_for(sandbox, "web", namespace, 120, phase="Aborted", state="aborted")
    assert aborted["stableRevision"] == template_hash(second["spec"]["template"])
    message = dict(events(sandbox, "web", namespace))[Reason.ANALYSIS_FAILED]
    assert "metric healthy failed" in message
    assert "value false" in message
    assert "successCondition `result == true` does not hold" in message
