"""One controller process: kopf's watches feed the caches, work queues reconcile, nothing else.

kopf is used for what it does well (resumable watches, server-side label selectors, login)
and nothing that writes: no daemons (finalizers), no create/update handlers (progress
annotations), no kopf Events. Every write is ours, made by a reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import kopf
from kubernetes.aio import config as aio_config
from kubernetes.aio.client import ApiClient

from delivery import tls, webhook
from delivery.api.definition import WEBHOOK_SERVICE
from delivery.controllers.rollout import RolloutController
from delivery.kube.api import Kube
from delivery.ops.leader import LeaseConfig
from delivery.ops.notify import NotifyConfig
from delivery.webhook import Webhook

CONTROLLER_ID_LABEL = "delivery.luojilab.com/controller-id"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: the whole cluster
    controller_id: str | None = None
    identity: str = ""  # this replica, in the Lease and its Events' reportingInstance
    workers: int = 8
    webhook: str = "local"  # "local": a URL on 127.0.0.1; "off"; or the in-cluster Service "NAMESPACE/NAME"
    webhook_port: int = 0  # 0: any free port
    webhook_certificate: Path | None = None  # ca.crt, tls.crt, tls.key; None: made at start
    leader: LeaseConfig | None = None  # None: no election, this process always writes
    metrics_address: str = "0.0.0.0"  # noqa: S104 - scraped from other pods
    metrics_port: int = 0  # 0: no metrics or health endpoints
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    @property
    def shard_selector(self) -> str:
        """The objects this controller owns, as a label selector sent with the watch itself."""
        if self.controller_id:
            return f"{CONTROLLER_ID_LABEL}={self.controller_id}"
        return f"!{CONTROLLER_ID_LABEL}"


async def api_client(kubeconfig: str | None) -> ApiClient:
    if kubeconfig or os.environ.get("KUBECONFIG"):
        client: ApiClient = await aio_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig
        )
        return client
    aio_config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped in kubernetes.aio
    return ApiClient()


def _login_as(client: ApiClient) -> Callable[..., Awaitable[kopf.ConnectionInfo]]:
    """kopf's watches log in with the very credentials our client loaded: one config source."""

    async def login(**_: Any) -> kopf.ConnectionInfo:
        config = client.configuration
        scheme, _space, token = (config.api_key.get("BearerToken") or "").partition(" ")
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            scheme=scheme or None,
            token=token or None,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
        )

    return login


def kopf_settings(options: Options, watched: list[tuple[str, str]]) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # our Events have stable reasons; kopf's would be noise
    settings.watching.server_timeout = 300
    for group, plural in watched:
        settings.watching.label_selectors[group, plural] = options.shard_selector
    return settings


async def _serve_webhook(kube: Kube, options: Options) -> Webhook | None:
    """The conversion webhook, with the mounted certificate or one made for this process, the CRDs
    pointed at it."""
    if options.webhook == "off":
        return None
    service = None
    host = "127.0.0.1"
    if options.webhook != "local":
        namespace, _slash, name = options.webhook.partition("/")
        service = replace(WEBHOOK_SERVICE, name=name, namespace=namespace)
        host = "0.0.0.0"  # noqa: S104 - in a pod, the Service reaches us on the pod's address
    directory = Path(tempfile.mkdtemp(prefix="delivery-webhook-"))
    material = (
        tls.ServingCertificate.read(options.webhook_certificate) if options.webhook_certificate else None
    )
    running = await webhook.serve(
        kube, directory, host=host, port=options.webhook_port, service=service, material=material
    )
    log.info("conversion webhook at %s", running.url)
    return running


async def run(options: Options) -> None:
    """Run every controller until cancelled."""
    client = await api_client(options.kubeconfig)
    kube = Kube(client)
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(_login_as(client))
    controller = RolloutController(kube, options.workers)
    controller.register(registry)
    settings = kopf_settings(options, controller.sharded)
    converter = await _serve_webhook(kube, options)
    workers = asyncio.create_task(controller.queue.run())
    try:
        # kopf returns on SIGTERM/SIGINT after closing its watches; the workers stop with it.
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=not options.namespaces,
            namespaces=options.namespaces,
        )
    finally:
        workers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await workers
        if converter is not None:
            await converter.stop()
        log.info("API requests by verb: %s", json.dumps(dict(kube.requests)))
        await client.close()  # type: ignore[no-untyped-call]  # untyped in kubernetes.aio
