"""The validating webhook: an analysis template that cannot work is refused at apply with every
problem and its field, over TLS, and the chart's ValidatingWebhookConfiguration is pointed at it."""

from __future__ import annotations

import asyncio
import base64
import copy
import ssl
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import pytest

from delivery import tls
from delivery.api.definition import WEBHOOK_SERVICE
from delivery.kube.api import JSON_PATCH, Kube, KubeError
from delivery.webhook import admission, point_validation, serve, start
from tests.secret_volume import mount

CONFIGURATION_PATH = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"
NAME = "delivery-analysis"


def template(
    condition: str = "result[0] < 0.01",
    query: str = "rate(errors[1m])",
    kind: str = "AnalysisTemplate",
) -> dict[str, Any]:
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": kind,
        "metadata": {"name": "errors", **({"namespace": "shop"} if kind == "AnalysisTemplate" else {})},
        "spec": {
            "metrics": [
                {"name": "rate", "successCondition": condition, "provider": {"prometheus": {"query": query}}}
            ]
        },
    }


def review(obj: Any, operation: str = "CREATE", old: Any = None, **request: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": operation, "object": obj, "oldObject": old, **request},
    }


def test_a_template_that_can_work_is_allowed_with_the_requests_uid() -> None:
    answer = admission(review(template(), dryRun=True))
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"] == {"uid": "u-1", "allowed": True}


@pytest.mark.parametrize("kind", ["AnalysisTemplate", "ClusterAnalysisTemplate"])
def test_every_problem_is_refused_at_once_with_its_field_and_column(kind: str) -> None:
    bad = template("len(result) > 0 and result[0] < )", "rate(errors{job='{{ args.job", kind)
    bad["spec"]["metrics"].append(
        {"name": "p99", "failureCondition": "median(result) > 1", "provider": {"prometheus": {"query": "x"}}}
    )
    response = admission(review(bad))["response"]
    assert response["uid"] == "u-1"
    assert response["allowed"] is False
    status = response["status"]
    assert (status["code"], status["reason"]) == (422, "Invalid")
    fields = [
        "spec.metrics[0].successCondition",
        "spec.metrics[0].provider.prometheus.query",
        "spec.metrics[1].failureCondition",
    ]
    assert [cause["field"] for cause in status["details"]["causes"]] == fields
    assert status["message"].split("; ") == [
        "spec.metrics[0].successCondition: column 33: expected an expression, found ')'",
        "spec.metrics[0].provider.prometheus.query: line 1: unexpected end of template, "
        "expected 'end of print statement'.",
        "spec.metrics[1].failureCondition: column 1: unknown name 'median' (the only variable is result)",
    ]
    assert (status["details"]["kind"], status["details"]["name"]) == (kind, "errors")


def test_an_undeclared_argument_is_a_warning_not_a_refusal() -> None:
    response = admission(review(template(query="up{job='{{args.job}}'}")))["response"]
    assert response["allowed"] is True
    assert response["warnings"] == [
        "spec.metrics[0].provider.prometheus.query: argument job is not declared in spec.args"
    ]


def test_an_update_is_refused_only_for_problems_the_old_object_did_not_have() -> None:
    stored = template("result[0] <")  # stored while the webhook was down
    labelled = copy.deepcopy(stored)
    labelled["metadata"]["labels"] = {"team": "shop"}
    assert admission(review(labelled, "UPDATE", stored))["response"]["allowed"] is True
    worse = template("result[0] <", "up{{")
    response = admission(review(worse, "UPDATE", stored))["response"]
    assert response["allowed"] is False
    assert [cause["field"] for cause in response["status"]["details"]["causes"]] == [
        "spec.metrics[0].provider.prometheus.query"
    ]
    assert admission(review(worse, "CREATE"))["response"]["allowed"] is False  # both, when new


@pytest.mark.parametrize(
    "body",
    [
        review(template("result <"), "DELETE"),
        review({**template("result <"), "kind": "Rollout"}),
        review(
            {**template("result <"), "metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
        ),
    ],
)
def test_other_operations_kinds_and_objects_being_deleted_are_allowed(body: dict[str, Any]) -> None:
    assert admission(body)["response"] == {"uid": "u-1", "allowed": True}


@pytest.mark.parametrize(
    "body", [None, [1], {**review(template()), "apiVersion": "admission.k8s.io/v1beta1"}]
)
def test_what_cannot_be_read_is_allowed_with_a_warning_as_failure_policy_ignore_would(body: Any) -> None:
    response = admission(body)["response"]
    assert response["allowed"] is True
    assert response["warnings"][0].startswith("delivery did not validate this: expected an AdmissionReview")


def test_a_template_nested_beyond_the_parsers_depth_is_refused_not_a_crash() -> None:
    response = admission(review(template(query="{{" + "(" * 5000 + "}}")))["response"]
    assert response["allowed"] is False
    assert "nested too deeply to parse" in response["status"]["message"]


async def test_the_server_answers_admission_reviews_over_tls(tmp_path: Path) -> None:
    material = tls.self_signed(tls.LOCAL_HOSTS)
    running = await start(*material.write(tmp_path))
    trust = ssl.create_default_context(cadata=material.ca.decode())
    try:
        async with httpx.AsyncClient(verify=trust) as client:
            assert running.validation_url.endswith(f":{running.port}/validate")
            answer = await client.post(running.validation_url, json=review(template("result <")))
            assert answer.status_code == 200
            assert answer.json()["response"]["allowed"] is False
            broken = await client.post(running.validation_url, content=b"{not json")
            assert broken.status_code == 400
            assert broken.json()["response"]["allowed"] is True
    finally:
        await running.stop()


def configuration() -> dict[str, Any]:
    """The chart's ValidatingWebhookConfiguration, as the apiserver returns it (no caBundle yet)."""
    hook = {
        "name": "analysistemplates.delivery.luojilab.com",
        "clientConfig": {
            "service": {
                "name": "delivery-webhook",
                "namespace": "delivery-system",
                "path": "/validate",
                "port": 443,
            }
        },
        "failurePolicy": "Ignore",
    }
    return {"metadata": {"name": NAME}, "webhooks": [hook]}


class ConfigurationKube(Kube):
    """ValidatingWebhookConfigurations in memory, patched with the real RFC 6902 library; the
    CRDs are not installed (404)."""

    def __init__(self, configurations: dict[str, dict[str, Any]]) -> None:
        super().__init__(client=None)  # type: ignore[arg-type]  # request() below never uses it
        self.configurations = configurations
        self.patches: list[Any] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        name = path.removeprefix(CONFIGURATION_PATH)
        if not path.startswith(CONFIGURATION_PATH) or name not in self.configurations:
            raise KubeError(404, "NotFound", path)
        if method == "PATCH":
            assert content_type == JSON_PATCH
            self.patches.append(body)
            self.configurations[name] = jsonpatch.apply_patch(self.configurations[name], body)
        return copy.deepcopy(self.configurations[name])

    def client_config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.configurations[NAME]["webhooks"][0]["clientConfig"]
        return config


async def test_point_validation_sets_the_service_and_ca_bundle_once() -> None:
    kube = ConfigurationKube({NAME: configuration()})
    assert await point_validation(kube, NAME, b"PEM", WEBHOOK_SERVICE)
    assert kube.client_config() == {
        "caBundle": base64.b64encode(b"PEM").decode(),
        "service": {
            "name": "delivery-webhook",
            "namespace": "delivery-system",
            "path": "/validate",
            "port": 443,
        },
    }
    assert await point_validation(kube, NAME, b"PEM", WEBHOOK_SERVICE)
    assert len(kube.patches) == 1  # already so: no write
    assert await point_validation(kube, NAME, b"PEM", "https://127.0.0.1:9443/convert")
    assert kube.client_config() == {
        "caBundle": base64.b64encode(b"PEM").decode(),
        "url": "https://127.0.0.1:9443/validate",
    }
    assert not await point_validation(kube, "someone-elses", b"PEM", WEBHOOK_SERVICE)


async def test_serve_points_the_configuration_at_a_validation_the_apiserver_can_trust(tmp_path: Path) -> None:
    kube = ConfigurationKube({NAME: configuration()})
    running = await serve(kube, tmp_path, validating=NAME)
    try:
        config = kube.client_config()
        assert config["url"] == running.validation_url
        trust = ssl.create_default_context(cadata=base64.b64decode(config["caBundle"]).decode())
        async with httpx.AsyncClient(verify=trust) as client:  # as the apiserver will call it
            answer = await client.post(config["url"], json=review(template("result <")))
        assert answer.json()["response"]["allowed"] is False
    finally:
        await running.stop()


async def test_a_configuration_made_after_the_start_and_a_new_ca_are_followed(tmp_path: Path) -> None:
    kube = ConfigurationKube({})  # Helm creates the configuration after the Deployment
    volume = tmp_path / "volume"
    first, second = tls.self_signed(tls.LOCAL_HOSTS), tls.self_signed(tls.LOCAL_HOSTS)
    mount(volume, first)
    running = await serve(kube, tmp_path / "served", mounted=volume, reload_interval=0.05, validating=NAME)

    async def bundle(expected: bytes) -> bytes:
        for _ in range(100):
            found = base64.b64decode(kube.client_config().get("caBundle", "")) if kube.configurations else b""
            if found == expected:
                break
            await asyncio.sleep(0.05)
        return found

    try:
        kube.configurations[NAME] = configuration()
        assert await bundle(first.ca) == first.ca
        assert kube.client_config()["url"] == running.validation_url
        mount(volume, second)
        assert await bundle(second.ca + first.ca) == second.ca + first.ca  # both trusted
    finally:
        await running.stop()
