"""The conversion webhook answers every ConversionReview, over TLS, and points the CRDs at itself."""

from __future__ import annotations

import asyncio
import base64
import copy
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from delivery import tls
from delivery.api.component import COMPONENT
from delivery.api.crdgen import crd
from delivery.api.definition import WEBHOOK_SERVICE
from delivery.kube.api import JSON_PATCH, Kube, KubeError
from delivery.webhook import Webhook, point_conversion, review, serve, start
from tests.secret_volume import mount

V1ALPHA1 = "component.luojilab.com/v1alpha1"
V1BETA1 = "component.luojilab.com/v1beta1"
SEED: dict[str, Any] = {
    "apiVersion": V1ALPHA1,
    "kind": "Component",
    "metadata": {"name": "nginx", "namespace": "shop", "uid": "u1"},
    "spec": {
        "workloadType": "Deployment",
        "developLanguage": "python",
        "runType": "server",
        "image": "python-demo:latest",
        "port": 8080,
        "svc": {"type": "aliyun-slb"},
    },
}


def request(objects: list[Any], desired: str = V1BETA1) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "r1", "desiredAPIVersion": desired, "objects": objects},
    }


def test_a_successful_review_converts_every_object() -> None:
    answer = review(request([SEED, {**SEED, "metadata": {"name": "other"}}]))
    assert answer["apiVersion"] == "apiextensions.k8s.io/v1"
    assert answer["kind"] == "ConversionReview"
    response = answer["response"]
    assert response["uid"] == "r1"
    assert response["result"] == {"status": "Success"}
    assert [obj["apiVersion"] for obj in response["convertedObjects"]] == [V1BETA1, V1BETA1]
    assert response["convertedObjects"][0]["spec"]["svc"]["type"] == "luoji-slb"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (request([SEED], desired="component.luojilab.com/v9"), "cannot convert"),
        (request([{**SEED, "kind": "Rollout"}]), "only Component"),
        (request([SEED, "not an object"]), "conversion failed"),
        ({**request([SEED]), "apiVersion": "apiextensions.k8s.io/v1beta1"}, "ConversionReview of"),
        ({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}, "required"),
        ([1, 2], "ConversionReview of"),
    ],
)
def test_a_failed_review_is_an_answer_with_a_message(body: Any, message: str) -> None:
    response = review(body)["response"]
    assert response["result"]["status"] == "Failure"
    assert message in response["result"]["message"]
    assert "convertedObjects" not in response


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[tuple[Webhook, ssl.SSLContext]]:
    material = tls.self_signed(tls.LOCAL_HOSTS)
    running = await start(*material.write(tmp_path))
    trust = ssl.create_default_context(cadata=material.ca.decode())
    yield running, trust
    await running.stop()


async def test_the_server_answers_over_tls_trusting_only_its_ca(
    webhook: tuple[Webhook, ssl.SSLContext],
) -> None:
    running, trust = webhook
    async with httpx.AsyncClient(verify=trust) as client:
        answer = await client.post(running.url, json=request([SEED]))
        assert answer.status_code == 200
        assert answer.json()["response"]["result"] == {"status": "Success"}
        broken = await client.post(running.url, content=b"{not json")
        assert broken.status_code == 400
        assert broken.json()["response"]["result"]["status"] == "Failure"
        assert (await client.get(running.url.replace("/convert", "/healthz"))).text == "ok"
    async with httpx.AsyncClient() as untrusting:  # the system CAs did not sign it
        with pytest.raises(httpx.ConnectError):
            await untrusting.post(running.url, json=request([SEED]))


CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"


class FakeKube(Kube):
    """CRDs in memory; JSON patches of the form `point_conversion` sends."""

    def __init__(self, crds: dict[str, dict[str, Any]]) -> None:
        super().__init__(client=None)  # type: ignore[arg-type]  # request() below never uses it
        self.crds = crds
        self.patches: list[tuple[str, Any]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        name = path.removeprefix(CRD_PATH)
        if name not in self.crds:
            raise KubeError(404, "NotFound", name)
        if method == "PATCH":
            assert content_type == JSON_PATCH
            self.patches.append((name, body))
            test, add = body
            assert self.crds[name]["spec"]["conversion"]["strategy"] == test["value"]
            assert add["path"] == "/spec/conversion/webhook/clientConfig"
            self.crds[name]["spec"]["conversion"]["webhook"]["clientConfig"] = add["value"]
        return copy.deepcopy(self.crds[name])


def component_crd() -> dict[str, Any]:
    return crd(COMPONENT)


async def test_point_conversion_patches_webhook_crds_once() -> None:
    kube = FakeKube({"components.component.luojilab.com": component_crd()})
    url = "https://127.0.0.1:9443/convert"
    assert await point_conversion(kube, b"PEM", url) == ["components.component.luojilab.com"]
    config = kube.crds["components.component.luojilab.com"]["spec"]["conversion"]["webhook"]["clientConfig"]
    assert config == {"url": url, "caBundle": base64.b64encode(b"PEM").decode()}
    assert await point_conversion(kube, b"PEM", url) == []  # already so: no write
    assert len(kube.patches) == 1
    await point_conversion(kube, b"PEM", WEBHOOK_SERVICE)
    config = kube.crds["components.component.luojilab.com"]["spec"]["conversion"]["webhook"]["clientConfig"]
    assert "url" not in config
    assert config["service"] == {
        "name": "delivery-webhook",
        "namespace": "delivery-system",
        "path": "/convert",
        "port": 443,
    }


async def test_point_conversion_skips_crds_not_installed_or_not_converted_by_webhook() -> None:
    assert await point_conversion(FakeKube({}), b"PEM", "https://127.0.0.1:1/convert") == []
    crd = component_crd()
    crd["spec"]["conversion"] = {"strategy": "None"}
    kube = FakeKube({"components.component.luojilab.com": crd})
    assert await point_conversion(kube, b"PEM", "https://127.0.0.1:1/convert") == []
    assert kube.patches == []


async def test_serve_points_the_crds_at_a_webhook_the_apiserver_can_trust(tmp_path: Path) -> None:
    name = "components.component.luojilab.com"
    kube = FakeKube({name: component_crd()})
    running = await serve(kube, tmp_path)
    try:
        config = kube.crds[name]["spec"]["conversion"]["webhook"]["clientConfig"]
        assert config["url"] == running.url
        trust = ssl.create_default_context(cadata=base64.b64decode(config["caBundle"]).decode())
        async with httpx.AsyncClient(verify=trust) as client:  # as the apiserver will call it
            answer = await client.post(config["url"], json=request([SEED]))
        assert answer.json()["response"]["result"] == {"status": "Success"}
    finally:
        await running.stop()


def served_certificate(running: Webhook) -> x509.Certificate:
    """The certificate a new handshake presents (no server name sent, as for an IP address)."""
    return x509.load_pem_x509_certificate(ssl.get_server_certificate((running.host, running.port)).encode())


def leaf(material: tls.ServingCertificate) -> x509.Certificate:
    return x509.load_pem_x509_certificate(material.certificate)


async def test_a_mounted_certificate_is_followed_and_a_new_ca_trusted_before_it_is_served(
    tmp_path: Path,
) -> None:
    name = "components.component.luojilab.com"
    kube = FakeKube({name: component_crd()})
    volume = tmp_path / "volume"
    first, second = tls.self_signed(tls.LOCAL_HOSTS), tls.self_signed(tls.LOCAL_HOSTS)
    mount(volume, first)
    running = await serve(kube, tmp_path / "served", mounted=volume, reload_interval=0.05)

    def bundle() -> bytes:
        config = kube.crds[name]["spec"]["conversion"]["webhook"]["clientConfig"]
        return base64.b64decode(config["caBundle"])

    try:
        assert await asyncio.to_thread(served_certificate, running) == leaf(first)
        assert bundle() == first.ca
        mount(volume, second)
        for _ in range(100):
            if await asyncio.to_thread(served_certificate, running) == leaf(second):
                break
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(served_certificate, running) == leaf(second)
        # The CRD trusted the new CA before a handshake presented it; the previous one stays trusted
        # for the replicas that have not read the Secret yet.
        assert bundle() == second.ca + first.ca
        trust = ssl.create_default_context(cadata=second.ca.decode())
        async with httpx.AsyncClient(verify=trust) as client:
            answer = await client.post(running.url, json=request([SEED]))
        assert answer.json()["response"]["result"] == {"status": "Success"}
        # A certificate that does not go with its key (a writer half way through) is not served.
        mount(volume, replace(first, key=second.key))
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(served_certificate, running) == leaf(second)
        assert bundle() == second.ca + first.ca
    finally:
        await running.stop()


class RefusingKube(FakeKube):
    """The apiserver refuses the CRD's patch (down, or the RBAC wrong) while `refusing` is set."""

    refusing = False

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if method == "PATCH" and self.refusing:
            raise KubeError(503, "ServiceUnavailable", "try again")
        return await super().request(method, path, body=body, content_type=content_type, query=query)


async def test_a_new_ca_is_not_served_until_the_crds_trust_it(tmp_path: Path) -> None:
    name = "components.component.luojilab.com"
    kube = RefusingKube({name: component_crd()})
    volume = tmp_path / "volume"
    first, second = tls.self_signed(tls.LOCAL_HOSTS), tls.self_signed(tls.LOCAL_HOSTS)
    mount(volume, first)
    running = await serve(kube, tmp_path / "served", mounted=volume, reload_interval=0.05)
    try:
        kube.refusing = True
        mount(volume, second)
        await asyncio.sleep(0.3)  # several reloads, each refused
        assert await asyncio.to_thread(served_certificate, running) == leaf(first)
        kube.refusing = False
        for _ in range(100):
            if await asyncio.to_thread(served_certificate, running) == leaf(second):
                break
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(served_certificate, running) == leaf(second)
    finally:
        await running.stop()
