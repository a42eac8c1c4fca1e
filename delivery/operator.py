"""One controller process: kopf's watches feed the caches, work queues reconcile, nothing else.

kopf is used for what it does well (resumable watches, server-side label selectors, login)
and nothing that writes: no daemons (finalizers), no create/update handlers (progress
annotations), no kopf Events. Every write is ours, made by a reconcile.

The work queue stays closed until the caches are synced with a listing and, with leader
election, while this replica does not hold the Lease: standbys watch and cache, never write.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
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
from delivery.component.batch import Batch
from delivery.component.loadbalancer import LoadBalancerClient
from delivery.component.slb import LoadBalancing
from delivery.controllers.cache import Listed, key_of
from delivery.controllers.component import ComponentController
from delivery.controllers.rollout import RolloutController
from delivery.kube.api import Kube, KubeError, Object
from delivery.kube.kinds import REPLICA_SET, ROLLOUT
from delivery.ops import health, metrics
from delivery.ops.leader import LeaderElector, LeaseConfig
from delivery.ops.notify import Notifier, NotifyConfig
from delivery.report import EventNote
from delivery.rollout.revision import ROLLOUT_LABEL
from delivery.webhook import Webhook

CONTROLLER_ID_LABEL = "delivery.luojilab.com/controller-id"

log = logging.getLogger(__name__)

SYNC_POLL = 0.2  # seconds between looks at whether the watches caught up with the listing
SYNC_RELIST = 10.0  # seconds before listing again (an object deleted meanwhile is never seen)


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
    lb_endpoint: str | None = None  # the luoji-slb load balancer service; None: luoji-slb is refused
    rerender_limit: int = 5  # Components re-rendered at once after an input change
    rerender_deadline: float = 600.0  # seconds for a re-rendered Component to be ready

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
    # Namespaces given by name need no listing of every namespace, which a controller confined to
    # them may not read (kopf would retry it for a minute before starting the watches).
    settings.scanning.disabled = bool(options.namespaces)
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


def _version(body: Object) -> int:
    return int(body["metadata"].get("resourceVersion") or 0)


async def _listing(kube: Kube, options: Options) -> Listed:
    """What the watches must have delivered before a reconcile may trust the cache."""
    listed: Listed = {}
    for namespace in options.namespaces or (None,):
        for rollout in await kube.list(ROLLOUT, namespace, options.shard_selector):
            listed[key_of(rollout), ""] = _version(rollout)
        for replicaset in await kube.list(REPLICA_SET, namespace, ROLLOUT_LABEL):
            metadata = replicaset["metadata"]
            owner = (metadata["namespace"], metadata["labels"][ROLLOUT_LABEL])
            listed[owner, metadata["name"]] = _version(replicaset)
    return listed


async def _wait_synced(kube: Kube, controller: RolloutController, options: Options) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            listed = await _listing(kube, options)
        except (KubeError, OSError) as error:
            log.warning("listing for the cache sync failed: %s", error)
            await asyncio.sleep(SYNC_RELIST / 4)
            continue
        listed_at = loop.time()
        while loop.time() - listed_at < SYNC_RELIST:
            if controller.cache.sync_with(listed):
                log.info("caches synced: %d rollouts", len(controller.cache))
                return
            await asyncio.sleep(SYNC_POLL)


async def _take_part(
    kube: Kube, controller: RolloutController, options: Options, components: ComponentController
) -> None:
    """Sync the caches, then write: always, or while holding the Lease."""
    queue = controller.queue
    lease = options.leader.name if options.leader else ""
    leading = metrics.LEADER.labels(lease)
    leading.set(0)

    def lead(now_leading: bool) -> None:
        leading.set(1 if now_leading else 0)
        if not now_leading:
            queue.close()
            components.queue.close()
            return
        queue.open()
        for rollout in controller.cache.values():
            queue.add(key_of(rollout))
        components.queue.open()
        components.rerender_all()

    await _wait_synced(kube, controller, options)
    if options.leader is None:
        lead(True)
        return
    await LeaderElector(kube, options.leader, lead).run()


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run(options: Options) -> None:
    """Run every controller until cancelled."""
    client = await api_client(options.kubeconfig)
    kube = Kube(client)
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(_login_as(client))
    controller = RolloutController(kube, options.workers, options.identity)
    controller.queue.close()  # opened by _take_part
    controller.register(registry)
    batch = Batch(options.rerender_limit, datetime.timedelta(seconds=options.rerender_deadline))
    components = ComponentController(kube, options.workers, batch=batch)
    balancers = LoadBalancerClient(options.lb_endpoint) if options.lb_endpoint else None
    components.steps.append(LoadBalancing(components.kube, balancers))
    components.queue.close()  # opened with the Rollout controller's, by _take_part
    components.register(registry)
    steps = metrics.StepClock()
    notifier = Notifier(options.notify)

    def time_steps(rollout: Object, _status: Object, note: EventNote) -> None:
        steps.transition(key_of(rollout), note.reason)

    controller.on_transition += [time_steps, notifier.notify]
    controller.analyst.on_measurement.append(lambda taken: metrics.record_measurement(taken.phase.value))
    settings = kopf_settings(options, controller.sharded + components.sharded)
    for resource, selector in components.label_selectors().items():
        settings.watching.label_selectors[resource] = selector
    for resource, selector in components.field_selectors().items():
        settings.watching.field_selectors[resource] = selector
    converter = await _serve_webhook(kube, options)
    tasks = [
        asyncio.create_task(controller.queue.run()),
        asyncio.create_task(components.queue.run()),
        asyncio.create_task(notifier.run()),
    ]
    taking_part = asyncio.create_task(_take_part(kube, controller, options, components))

    def liveness() -> str | None:
        if taking_part.done() and not taking_part.cancelled() and taking_part.exception() is not None:
            return f"leader election stopped: {taking_part.exception()!r}"
        return None

    def readiness() -> str | None:
        if not controller.cache.synced:
            return "caches not synced"
        if taking_part.done() and options.leader is not None:
            return "not taking part in leader election"
        return None

    unregister = metrics.watch_rollouts(controller.cache.values)
    served = (
        await health.serve(
            options.metrics_address, options.metrics_port, liveness=liveness, readiness=readiness
        )
        if options.metrics_port
        else None
    )
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
        controller.queue.close()
        components.queue.close()
        await _stop(taking_part)  # after the queue closed: the Lease is released with nothing in flight
        for task in tasks:
            await _stop(task)
        unregister()
        if served is not None:
            await served.stop()
        if converter is not None:
            await converter.stop()
        if balancers is not None:
            await balancers.close()
        log.info("API requests by verb: %s", json.dumps(dict(kube.requests)))
        await client.close()  # type: ignore[no-untyped-call]  # untyped in kubernetes.aio
