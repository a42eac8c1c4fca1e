"""The webhooks: HTTPS on their own port, `ConversionReview` v1 on POST /convert and
`AdmissionReview` v1 on POST /validate.

Conversion. The apiserver stores Components as v1beta1 and calls this webhook whenever a client
reads or writes another version, so a webhook that is down or crashes makes Components
unreadable. Every request therefore gets an answer: a conversion that fails is a `Failure` with a
message, which the apiserver passes on to the client.

Validation. An AnalysisTemplate or ClusterAnalysisTemplate whose conditions do not parse, or
whose texts are not jinja2, is refused at apply with every problem and where it is
(`delivery.analysis.check`, the checker of `delivery check`): what the CRD's schema and CEL
cannot parse. It is an early refusal, not the only one: the ValidatingWebhookConfiguration fails
open (`failurePolicy: Ignore`, see charts/delivery), since the controller says the same in the
status of the Rollout that uses the template, and a controller that is down must not stop
anyone's writes. The validation only parses (no template is rendered, nothing is written), so
dry-run requests are answered like any other.

The CRDs are generated pointing at the in-cluster Service; `point_conversion` re-points them at
the running webhook (a URL where the apiserver cannot reach Services, as with a control plane on this machine)
and gives them the CA that signed the webhook's certificate. `point_validation` does the same for
the webhooks of one ValidatingWebhookConfiguration, named by the chart (the controller never
creates one: its RBAC names that one object).

A mounted certificate (a Secret that cert-manager or the chart renews) is followed without a
restart (`follow`): each TLS handshake is handed the context of the newest certificate, and a new
CA is written into the CRDs and the ValidatingWebhookConfiguration before any handshake presents
a certificate it signed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from delivery import tls
from delivery.analysis.check import KINDS, Problem, problems
from delivery.api import CUSTOM_RESOURCES
from delivery.api.conversion import convert
from delivery.api.definition import CustomResource, ServiceReference
from delivery.kube.api import JSON_PATCH, Kind, Kube

REVIEW_API_VERSION = "apiextensions.k8s.io/v1"
PATH = "/convert"
CRD = Kind(REVIEW_API_VERSION, "CustomResourceDefinition", "customresourcedefinitions", namespaced=False)
ADMISSION_API_VERSION = "admission.k8s.io/v1"
VALIDATE_PATH = "/validate"
VALIDATING_CONFIGURATION = Kind(
    "admissionregistration.k8s.io/v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    namespaced=False,
)
VALIDATED_OPERATIONS = ("CREATE", "UPDATE")
MAX_REQUEST = 8 * 1024 * 1024  # an AdmissionReview holds the object and the old one, each up to 1.5 MiB
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


def _admitted_problems(request: Mapping[str, Any]) -> list[Problem]:
    """The problems of an admission request's object: none for other kinds and operations, or
    an object being deleted (its finalizers removed); on UPDATE, only those the old object did
    not have, so a template stored while the webhook was down can still be labelled or fixed
    one problem at a time."""
    body = request.get("object")
    if (
        request.get("operation") not in VALIDATED_OPERATIONS
        or not isinstance(body, dict)
        or body.get("kind") not in KINDS
        or (body.get("metadata") or {}).get("deletionTimestamp")
    ):
        return []
    found = problems(body)
    old = request.get("oldObject")
    if request.get("operation") == "UPDATE" and isinstance(old, dict) and old.get("kind") in KINDS:
        before = set(problems(old))
        found = [problem for problem in found if problem not in before]
    return found


def admission(request_review: Any) -> dict[str, Any]:
    """The AdmissionReview that answers `request_review`; never raises.

    Refused (422 Invalid, every problem in the message and each as a cause with its field):
    what cannot work as written. Admitted with a warning (kubectl prints it): what a Rollout may
    still make work, an argument used but not declared. A request this cannot read, or a bug, is
    admitted with a warning saying so, as the apiserver would with the webhook down."""
    request = request_review.get("request") if isinstance(request_review, dict) else None
    request = request if isinstance(request, dict) else {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
    try:
        if not isinstance(request_review, dict) or request_review.get("apiVersion") != ADMISSION_API_VERSION:
            raise ValueError(f"expected an AdmissionReview of {ADMISSION_API_VERSION}")
        found = _admitted_problems(request)
    except Exception as error:  # a bug included: fail open, as failurePolicy Ignore does
        log.warning("admission review %s not validated: %s", response["uid"], error)
        response["warnings"] = [f"delivery did not validate this: {error}"]
        found = []
    refused = [problem for problem in found if problem.certain]
    warnings = [str(problem) for problem in found if not problem.certain]
    if warnings:
        response["warnings"] = warnings
    if refused:
        body = request["object"]
        response["allowed"] = False
        response["status"] = {
            "status": "Failure",
            "code": 422,
            "reason": "Invalid",
            "message": "; ".join(str(problem) for problem in refused),
            "details": {
                "group": str(body.get("apiVersion", "")).partition("/")[0],
                "kind": body["kind"],
                "name": (body.get("metadata") or {}).get("name", ""),
                "causes": [
                    {"reason": "FieldValueInvalid", "field": problem.field, "message": problem.message}
                    for problem in refused
                ],
            },
        }
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response}


async def _convert(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response(review(None), status=400)
    return web.json_response(review(body))


async def _validate(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response(admission(None), status=400)
    # In a thread: parsing a large template must not hold up the reconciles on this loop.
    return web.json_response(await asyncio.to_thread(admission, body))


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def application() -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST)
    app.router.add_post(PATH, _convert)
    app.router.add_post(VALIDATE_PATH, _validate)
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

    @property
    def validation_url(self) -> str:
        return f"https://{self.host}:{self.port}{VALIDATE_PATH}"

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


def _at(target: str | ServiceReference, path: str) -> str | ServiceReference:
    """The webhook of `path` on the server `target` (the conversion's URL or Service) names."""
    if isinstance(target, str):
        return urlsplit(target)._replace(path=path).geturl()
    return replace(target, path=path)


def client_config(target: str | ServiceReference, ca_bundle: bytes) -> dict[str, Any]:
    """A webhook's `clientConfig` (a CRD's conversion, an admission webhook) for a webhook at
    `target` (a URL or a Service)."""
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


async def point_validation(kube: Kube, name: str, ca_bundle: bytes, target: str | ServiceReference) -> bool:
    """Point every webhook of the ValidatingWebhookConfiguration `name` at the validation on
    `target`'s server, trusting `ca_bundle`; False when there is no such configuration. Webhooks
    already pointed there are not written; the rest of the configuration (rules, failurePolicy)
    is the chart's, never touched."""
    configuration = await kube.get(VALIDATING_CONFIGURATION, None, name)
    if configuration is None:
        return False
    config = client_config(_at(target, VALIDATE_PATH), ca_bundle)
    patch: list[dict[str, Any]] = []
    for index, hook in enumerate(configuration.get("webhooks") or ()):
        if hook.get("clientConfig") != config:
            patch += [
                # Refused if the webhooks were reordered since we read them.
                {"op": "test", "path": f"/webhooks/{index}/name", "value": hook["name"]},
                {"op": "replace", "path": f"/webhooks/{index}/clientConfig", "value": config},
            ]
    if patch:
        await kube.patch(VALIDATING_CONFIGURATION, None, name, patch, content_type=JSON_PATCH)
    return True


async def _point(
    kube: Kube, ca_bundle: bytes, target: str | ServiceReference, validating: str | None
) -> bool:
    """Point the CRDs and the ValidatingWebhookConfiguration `validating` (if any) at `target`;
    False when that configuration does not exist (yet: Helm creates it after the Deployment)."""
    await point_conversion(kube, ca_bundle, target)
    if validating is None or await point_validation(kube, validating, ca_bundle, target):
        return True
    log.warning(
        "ValidatingWebhookConfiguration %s not found: analysis templates are not validated at apply",
        validating,
    )
    return False


async def _point_late(kube: Kube, name: str, ca_bundle: bytes, target: str | ServiceReference) -> bool:
    """`point_validation` for a configuration missing at start; a failure is retried, apart
    from the certificate's reload (which it must not hold up)."""
    try:
        pointed = await point_validation(kube, name, ca_bundle, target)
    except Exception as error:
        log.warning("ValidatingWebhookConfiguration %s not pointed at the webhook: %s", name, error)
        return False
    if pointed:
        log.info("ValidatingWebhookConfiguration %s pointed at the webhook", name)
    return pointed


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
    validating: str | None = None,
    pointed: bool = True,
) -> None:
    """Serve the certificate in `mounted` whenever it changes, until cancelled; and point the
    ValidatingWebhookConfiguration `validating` at this server once it exists, if it did not
    when the webhook started (`pointed` False).

    The files are read whole every `interval` seconds and compared, not their mtimes: a Secret's
    volume swaps a `..data` symlink (new inodes, old mtimes possible), and three small files cost
    nothing to read. A certificate that does not load (a writer half way through) is skipped and
    read again next time. A new CA goes into the CRDs first, next to the one served until now, so
    the apiserver trusts both: replicas read the Secret at different moments (the kubelet syncs
    each pod's volume on its own), and one still serving the previous certificate stays trusted.
    """
    trusted = served.ca  # the caBundle written last
    while True:
        await asyncio.sleep(interval)
        if not pointed and validating is not None:
            pointed = await _point_late(kube, validating, trusted, target)
        try:
            newest = tls.ServingCertificate.read(mounted)
            if newest == served:
                continue
            context = server_context(*newest.write(directory))
            if newest.ca != served.ca:
                bundle = _bundle(newest.ca, served.ca)
                pointed = await _point(kube, bundle, target, validating)
                trusted = bundle
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
    validating: str | None = None,
) -> Webhook:
    """Start the webhook with a certificate of its own (written under `directory`) and point the
    CRDs and the ValidatingWebhookConfiguration `validating` (if any) at it: at `service` inside
    a cluster, else at its URL (an apiserver on this machine).

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
        pointed = await _point(kube, material.ca, target, validating)
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
                validating=validating,
                pointed=pointed,
            )
        )
    return webhook
