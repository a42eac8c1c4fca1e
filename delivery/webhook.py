"""The conversion webhook: HTTPS on its own port, `ConversionReview` v1 on POST /convert.

The apiserver stores Components as v1beta1 and calls this webhook whenever a client reads or
writes another version, so a webhook that is down or crashes makes Components unreadable. Every
request therefore gets an answer: a conversion that fails is a `Failure` with a message, which
the apiserver passes on to the client.

The CRDs are generated pointing at the in-cluster Service; `point_conversion` re-points them at
the running webhook (a URL where the apiserver cannot reach Services, as with a control plane on this machine)
and gives them the CA that signed the webhook's certificate.

A mounted certificate (a Secret that cert-manager or the chart renews) is followed without a
restart (`follow`): each TLS handshake is handed the context of the newest certificate, and a new
CA is written into the CRDs before any handshake presents a certificate it signed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
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
RELOAD_INTERVAL = 2.0  # seconds between two reads of a mounted certificate
CA_SETTLE = 1.0  # seconds for the apiserver to trust a new CA before a handshake presents it

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
    """A running webhook server. `serving` is the context of the newest certificate: every
    handshake switches to it (the server's own context only picks), so a new certificate needs
    no new socket and a handshake never sees a context half loaded."""

    runner: web.AppRunner
    host: str
    port: int
    serving: ssl.SSLContext
    following: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}{PATH}"

    def _pick(self, connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext) -> None:
        # Called for every ClientHello, with a server name or without (the apiserver sends none
        # for an IP address).
        connection.context = self.serving

    async def stop(self) -> None:
        if self.following is not None:
            self.following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.following
        await self.runner.cleanup()


def server_context(certificate: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    return context


async def start(certificate: Path, key: Path, host: str = "127.0.0.1", port: int = 0) -> Webhook:
    """Serve the webhook over HTTPS on `host`:`port` (0: a free port, see `Webhook.port`)."""
    context = server_context(certificate, key)
    runner = web.AppRunner(application(), access_log=None)
    await runner.setup()
    listening = socket.create_server((host, port))
    running = Webhook(runner, host, listening.getsockname()[1], context)
    context.sni_callback = running._pick  # the server's own callback
    await web.SockSite(runner, listening, ssl_context=context).start()
    return running


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


def _bundle(ca: bytes, previous: bytes) -> bytes:
    return ca if ca == previous else ca.rstrip(b"\n") + b"\n" + previous


async def follow(
    kube: Kube,
    running: Webhook,
    mounted: Path,
    *,
    directory: Path,
    target: str | ServiceReference,
    served: tls.ServingCertificate,
    interval: float = RELOAD_INTERVAL,
) -> None:
    """Serve the certificate in `mounted` whenever it changes, until cancelled.

    The files are read whole every `interval` seconds and compared, not their mtimes: a Secret's
    volume swaps a `..data` symlink (new inodes, old mtimes possible), and three small files cost
    nothing to read. A certificate that does not load (a writer half way through) is skipped and
    read again next time. A new CA goes into the CRDs first, next to the one served until now, so
    the apiserver trusts both: replicas read the Secret at different moments (the kubelet syncs
    each pod's volume on its own), and one still serving the previous certificate stays trusted.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            newest = tls.ServingCertificate.read(mounted)
            if newest == served:
                continue
            context = server_context(*newest.write(directory))
            if newest.ca != served.ca:
                await point_conversion(kube, _bundle(newest.ca, served.ca), target)
                await asyncio.sleep(CA_SETTLE)
        except Exception as error:  # whatever failed, the current certificate stays
            log.warning("webhook certificate in %s not reloaded: %s", mounted, error)
            continue
        running.serving, served = context, newest
        log.info("webhook certificate reloaded from %s", mounted)


async def serve(
    kube: Kube,
    directory: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    service: ServiceReference | None = None,
    mounted: Path | None = None,
    reload_interval: float = RELOAD_INTERVAL,
) -> Webhook:
    """Start the webhook with a certificate of its own (written under `directory`) and point the
    CRDs at it: at `service` inside a cluster, else at its URL (an apiserver on this machine).

    Replicas behind one Service are given the same certificate, `mounted` (ca.crt, tls.crt,
    tls.key from a Secret), and follow it as it is renewed: each made its own, each would point
    the CRDs at its own CA and the apiserver would trust only the last."""
    hosts = (
        tls.LOCAL_HOSTS
        if service is None
        else (*tls.LOCAL_HOSTS, *tls.service_hosts(service.name, service.namespace))
    )
    material = tls.ServingCertificate.read(mounted) if mounted else tls.self_signed(hosts)
    webhook = await start(*material.write(directory), host=host, port=port)
    target = service or webhook.url
    try:
        await point_conversion(kube, material.ca, target)
    except BaseException:
        await webhook.stop()
        raise
    if mounted is not None:
        webhook.following = asyncio.create_task(
            follow(
                kube,
                webhook,
                mounted,
                directory=directory,
                target=target,
                served=material,
                interval=reload_interval,
            )
        )
    return webhook
