"""The conversion webhook: HTTPS on its own port, `ConversionReview` v1 on POST /convert.

The apiserver stores Components as v1beta1 and calls this webhook whenever a client reads or
writes another version, so a webhook that is down or crashes makes Components unreadable. Every
request therefore gets an answer: a conversion that fails is a `Failure` with a message, which
the apiserver passes on to the client.

The CRDs are generated pointing at the in-cluster Service; `point_conversion` re-points them at
the running webhook (a URL where the apiserver cannot reach Services, as in the local sandbox)
and gives them the CA that signed the webhook's certificate.
"""

from __future__ import annotations

import base64
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from delivery import tls
from delivery.api import CUSTOM_RESOURCES
from delivery.api.conversion import convert
from delivery.api.definition import CustomResource, ServiceReference
from delivery.kube.api import JSON_PATCH, Kind, Kube

REVIEW_API_VERSION = "apiextensions.k8s.io/v1"
PATH = "/convert"
CRD = Kind(REVIEW_API_VERSION, "CustomResourceDefinition", "customresourcedefinitions", namespaced=False)

log = logging.getLogger(__name__)


def review(request_review: Any) -> dict[str, Any]:
    """The ConversionReview that answers `request_review`; never raises."""
    request = request_review.get("request") if isinstance(request_review, dict) else None
    request = request if isinstance(request, dict) else {}
    uid = request.get("uid", "")
    try:
        if not isinstance(request_review, dict) or request_review.get("apiVersion") != REVIEW_API_VERSION:
            raise ValueError(f"expected a ConversionReview of {REVIEW_API_VERSION}")
        objects, desired = request.get("objects"), request.get("desiredAPIVersion")
        if not isinstance(objects, list) or not isinstance(desired, str):
            raise ValueError("request.objects and request.desiredAPIVersion are required")
        converted = [convert(obj, desired) for obj in objects]
        response: dict[str, Any] = {
            "uid": uid,
            "convertedObjects": converted,
            "result": {"status": "Success"},
        }
    except Exception as error:  # a bug included: the apiserver shows the message to the client
        log.warning("conversion %s failed: %s", uid, error)
        response = {"uid": uid, "result": {"status": "Failure", "message": f"conversion failed: {error}"}}
    return {"apiVersion": REVIEW_API_VERSION, "kind": "ConversionReview", "response": response}


async def _convert(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response(review(None), status=400)
    return web.json_response(review(body))


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def application() -> web.Application:
    app = web.Application()
    app.router.add_post(PATH, _convert)
    app.router.add_get("/healthz", _healthz)
    return app


@dataclass
class Webhook:
    """A running webhook server."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}{PATH}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(certificate: Path, key: Path, host: str = "127.0.0.1", port: int = 0) -> Webhook:
    """Serve the webhook over HTTPS on `host`:`port` (0: a free port, see `Webhook.port`)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    runner = web.AppRunner(application(), access_log=None)
    await runner.setup()
    listening = socket.create_server((host, port))
    await web.SockSite(runner, listening, ssl_context=context).start()
    return Webhook(runner, host, listening.getsockname()[1])


def client_config(target: str | ServiceReference, ca_bundle: bytes) -> dict[str, Any]:
    """A CRD's `conversion.webhook.clientConfig` for a webhook at `target` (a URL or a Service)."""
    config: dict[str, Any] = {"caBundle": base64.b64encode(ca_bundle).decode()}
    if isinstance(target, str):
        config["url"] = target
    else:
        config["service"] = {
            "name": target.name,
            "namespace": target.namespace,
            "path": target.path,
            "port": target.port,
        }
    return config


async def point_conversion(
    kube: Kube,
    ca_bundle: bytes,
    target: str | ServiceReference,
    resources: Sequence[CustomResource] = CUSTOM_RESOURCES,
) -> list[str]:
    """Point every installed CRD of `resources` that converts by webhook at `target`, trusting
    `ca_bundle`; the names of the CRDs that changed. CRDs already pointed there are not written."""
    config = client_config(target, ca_bundle)
    changed = []
    for resource in resources:
        if not resource.webhook_conversion:
            continue
        crd = await kube.get(CRD, None, resource.name)
        conversion = crd["spec"].get("conversion", {}) if crd else {}
        if conversion.get("strategy") != "Webhook" or conversion["webhook"].get("clientConfig") == config:
            continue
        patch = [
            # Refused if the strategy changed since we read it, rather than adding a webhook to it.
            {"op": "test", "path": "/spec/conversion/strategy", "value": "Webhook"},
            {"op": "add", "path": "/spec/conversion/webhook/clientConfig", "value": config},
        ]
        await kube.patch(CRD, None, resource.name, patch, content_type=JSON_PATCH)
        changed.append(resource.name)
    return changed


async def serve(
    kube: Kube,
    directory: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    service: ServiceReference | None = None,
    material: tls.ServingCertificate | None = None,
) -> Webhook:
    """Start the webhook with a certificate of its own (written under `directory`) and point the
    CRDs at it: at `service` inside a cluster, else at its URL (an apiserver on this machine).

    Replicas behind one Service are given the same `material` (a mounted Secret): each made its
    own, each would point the CRDs at its own CA and the apiserver would trust only the last."""
    hosts = (
        tls.LOCAL_HOSTS
        if service is None
        else (*tls.LOCAL_HOSTS, *tls.service_hosts(service.name, service.namespace))
    )
    material = material or tls.self_signed(hosts)
    webhook = await start(*material.write(directory), host=host, port=port)
    try:
        await point_conversion(kube, material.ca, service or webhook.url)
    except BaseException:
        await webhook.stop()
        raise
    return webhook
