"""An analysis written as Argo Rollouts' documentation writes one (docs/features/analysis.md:
"Analysis Template Arguments", "Dry-Run Mode", "Measurements Retention", "ConsecutiveSuccessLimit
and FailureLimit", "Referencing Secrets"), applied with only its apiVersion changed and released:
the arguments come from a Secret, the Rollout's labels and its pod-template hashes; a failing
dry-run metric does not abort; the streak of successes ends the metric; more than five
measurements are kept. A Secret without its owner's consent pauses the analysis, saying so."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from delivery.analysis.run import SECRET_CONSENT_LABEL
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests import loopback
from tests.controller import Controller
from tests.rollouts import apply, rollout, status, wait_for
from tests.waiting import eventually

TOKEN = "s3cret"  # a made-up credential
STREAK = 6  # successes in a row that end the web metric: more measurements than the default five kept


@dataclass
class Seen:
    """What the loopback endpoint was asked: each request's Authorization and query."""

    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)


@pytest.fixture
def endpoint() -> Iterator[tuple[Seen, str]]:
    seen = Seen()

    class Handler(loopback.Quiet):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            seen.requests.append((self.headers.get("Authorization", ""), parse_qs(url.query)))
            answer = b'{"results": {"ok": "true"}}' if url.path == "/measure" else b'{"errors": 50}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    with loopback.serving(Handler) as url:
        yield seen, url


def argo_template(namespace: str, base: str) -> dict[str, Any]:
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",  # argoproj.io/v1alpha1 in Argo's documentation
        "kind": "AnalysisTemplate",
        "metadata": {"name": "args-example", "namespace": namespace},
        "spec": {
            "args": [
                {"name": "service-name"},
                {"name": "stable-hash"},
                {"name": "latest-hash"},
                {"name": "env"},
                {"name": "api-url", "value": f"{base}/measure"},
                {
                    "name": "api-token",
                    "valueFrom": {"secretKeyRef": {"name": "token-secret", "key": "apiToken"}},
                },
            ],
            "dryRun": [{"metricName": "total-5xx-errors"}],
            "measurementRetention": [{"metricName": ".*", "limit": 20}],
            "metrics": [
                {
                    "name": "webmetric",
                    "interval": "1s",
                    "successCondition": "result == 'true'",
                    "failureLimit": -1,
                    "consecutiveSuccessLimit": STREAK,
                    "provider": {
                        "web": {
                            "url": (
                                "{{ args.api-url }}?service={{ args.service-name }}&env={{ args.env }}"
                                "&stable={{ args.stable-hash }}&latest={{ args.latest-hash }}"
                            ),
                            "headers": [{"key": "Authorization", "value": "Bearer {{ args.api-token }}"}],
                            "jsonPath": "{$.results.ok}",
                        }
                    },
                },
                {
                    "name": "total-5xx-errors",
                    "interval": "1s",
                    "failureCondition": "result >= 10",
                    "failureLimit": 1,
                    "provider": {"web": {"url": f"{base}/errors", "jsonPath": "{$.errors}"}},
                },
            ],
        },
    }


def secret(namespace: str, *, consent: bool) -> dict[str, Any]:
    labels = {SECRET_CONSENT_LABEL: "true"} if consent else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token-secret", "namespace": namespace, "labels": labels},
        "data": {"apiToken": base64.b64encode(TOKEN.encode()).decode()},
    }


STRATEGY = {
    "canary": {
        "steps": [
            {"setWeight": 50},
            {
                "analysis": {
                    "templates": [{"templateName": "args-example"}],
                    "args": [
                        {"name": "service-name", "value": "guestbook-svc.default.svc.cluster.local"},
                        {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
                        {"name": "latest-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                        {"name": "env", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['env']"}}},
                    ],
                }
            },
        ],
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
    }
}


def labelled(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"]["labels"] = {"env": "dev", "region": "us-west-2"}
    return body


def test_an_argo_documented_analysis_releases_with_only_its_api_version_changed(
    sandbox: Sandbox, namespace: str, controller: Controller, endpoint: tuple[Seen, str]
) -> None:
    seen, base = endpoint
    first = labelled(rollout("guestbook", namespace, "web:1", STRATEGY, replicas=2))
    apply(sandbox, secret(namespace, consent=True), argo_template(namespace, base), first)
    wait_for(sandbox, "guestbook", namespace, phase="Healthy")
    second = labelled(rollout("guestbook", namespace, "web:2", STRATEGY, replicas=2))
    apply(sandbox, second)
    new = template_hash(second["spec"]["template"])
    promoted = wait_for(sandbox, "guestbook", namespace, 120, phase="Healthy", stableRevision=new)

    web, errors = promoted["analysisHistory"][-1]["metrics"]
    assert (web["phase"], web["consecutiveSuccess"]) == ("Successful", STREAK)
    assert len(web["measurements"]) == STREAK  # retention 20: more than the default 5 kept
    assert (errors["phase"], errors["dryRun"]) == ("Failed", True)  # and yet promoted
    assert "dry run: metric total-5xx-errors failed" in promoted["analysisHistory"][-1]["message"]

    asked = [query for authorization, query in seen.requests if "service" in query]
    assert {authorization for authorization, query in seen.requests if "service" in query} == {
        f"Bearer {TOKEN}"
    }
    assert asked[0]["env"] == ["dev"]
    assert asked[0]["latest"] == [new]
    assert asked[0]["stable"] == [template_hash(first["spec"]["template"])]
    assert TOKEN not in str(promoted)


def test_a_secret_argument_without_consent_holds_the_analysis_and_says_why(
    sandbox: Sandbox, namespace: str, controller: Controller, endpoint: tuple[Seen, str]
) -> None:
    seen, base = endpoint
    first = labelled(rollout("guestbook", namespace, "web:1", STRATEGY, replicas=2))
    apply(sandbox, secret(namespace, consent=False), argo_template(namespace, base), first)
    wait_for(sandbox, "guestbook", namespace, phase="Healthy")
    apply(sandbox, labelled(rollout("guestbook", namespace, "web:2", STRATEGY, replicas=2)))

    def refused() -> dict[str, Any] | None:
        history = status(sandbox, "guestbook", namespace).get("analysisHistory") or []
        return history[-1] if history and "is not labelled" in history[-1].get("message", "") else None

    run = eventually(refused, timeout=60, what="the analysis saying the Secret has no consent")
    assert run["phase"] == "Error"
    assert f"{SECRET_CONSENT_LABEL}=true" in run["message"]
    assert "argument api-token" in run["message"]
    assert seen.requests == []  # nothing measured with a Secret it may not read
    assert status(sandbox, "guestbook", namespace)["phase"] != "Healthy"
