"""One controller process: informers feed the caches, work queues reconcile, nothing else.

The informers (`delivery.kube.informer`) list and watch each kind the controllers read, selected
server-side (the shard's label selector, the Component name label), and tell the caches of every
change, including deletions a watch gap hid. Every write is a reconcile's.

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
import signal
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubernetes.aio import config as aio_config
from kubernetes.aio.client import ApiClient

from delivery import webhook
from delivery.analysis.egress import Egress
from delivery.api.definition import WEBHOOK_SERVICE
from delivery.component.batch import Batch
from delivery.component.loadbalancer import LoadBalancerClient
from delivery.component.slb import LoadBalancing
from delivery.component.templating import TEMPLATES_CONFIGMAP, TEMPLATES_NAMESPACE
from delivery.controllers.cache import key_of
from delivery.controllers.component import ComponentController
from delivery.controllers.rollout import RolloutController
from delivery.dashboard.server import Dashboard, serve
from delivery.dashboard.store import Store
from delivery.kube import shard
from delivery.kube.api import Kube, Object
from delivery.kube.discovery import Discovery
from delivery.kube.failpoints import Failpoints
from delivery.kube.fence import Fence
from delivery.kube.informer import Handler, Informer, Watch
from delivery.ops import collector, health, metrics
from delivery.ops.leader import LeaderElector, LeaseConfig
from delivery.ops.notify import Notifier, NotifyConfig
from delivery.report import EventNote
from delivery.webhook import Webhook

CONTROLLER_ID_LABEL = shard.LABEL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: the whole cluster
    controller_id: str | None = None
    identity: str = ""  # this replica, in the Lease and its Events' reportingInstance
    workers: int = 32
    webhook: str = "local"  # "local": a URL on 127.0.0.1; "off"; or the in-cluster Service "NAMESPACE/NAME"
    webhook_port: int = 0  # 0: any free port
    webhook_certificate: Path | None = None  # ca.crt, tls.crt, tls.key; None: made at start
    validating_webhook: str | None = None  # the ValidatingWebhookConfiguration pointed at /validate
    leader: LeaseConfig | None = None  # None: no election, this process always writes
    metrics_address: str = "0.0.0.0"  # noqa: S104 - scraped from other pods
    metrics_port: int = 0  # 0: no metrics or health endpoints
    # The read-only dashboard (delivery/dashboard): it reads with the controller's ServiceAccount, so
    # it never acts for whoever reaches the page. 0: not served.
    dashboard_address: str = "0.0.0.0"  # noqa: S104 - reached through the chart's ClusterIP Service
    dashboard_port: int = 0
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    lb_endpoint: str | None = None  # the luoji-slb load balancer service; None: luoji-slb is refused
    egress: Egress = field(default_factory=Egress)  # where analysis connects; the apiserver added at start
    rerender_limit: int = 5  # Components re-rendered at once after an input change
    rerender_deadline: float = 600.0  # seconds for a re-rendered Component to be ready
    templates: tuple[str, str] = (TEMPLATES_NAMESPACE, TEMPLATES_CONFIGMAP)  # the templates ConfigMap
    # ConfigMap, Secret: the kinds whose labelled objects are released with the Rollouts using them
    tracking: tuple[str, ...] = ()


PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


def _environment_trusted(client: ApiClient) -> ApiClient:
    """The client reading proxies (and ~/.netrc) from the environment only when a proxy is set there.

    kubernetes.aio's session trusts the environment, which makes aiohttp read ~/.netrc in a thread
    and look the proxy variables up in another at every request: a tenth of the controller's CPU
    in a release. The apiserver's credentials come from the kubeconfig, never from netrc, and a
    kubeconfig's `proxy-url` is passed with each request whatever this says.
    """
    if not any(os.environ.get(name) or os.environ.get(name.lower()) for name in PROXY_VARIABLES):
        client.configuration.client_session_kwargs = {"trust_env": False}
    return client


async def api_client(kubeconfig: str | None) -> ApiClient:
    if kubeconfig or os.environ.get("KUBECONFIG"):
        client: ApiClient = await aio_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig
        )
        return _environment_trusted(client)
    aio_config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped in kubernetes.aio
    return _environment_trusted(ApiClient())


async def _serve_dashboard(kube: Kube, options: Options) -> Dashboard:
    """The read-only dashboard of the namespaces watched: no `act`, so no buttons and every POST
    refused, since whoever reaches the Service would act with the controller's ServiceAccount. Any
    Host is answered (the Service is reached by its DNS names or through a port-forward)."""
    served = await serve(
        Store(kube, options.namespaces),
        options.dashboard_address,
        options.dashboard_port,
        act=None,
        local=False,
        scope=", ".join(options.namespaces) or "all namespaces",
    )
    log.info("read-only dashboard on port %d", served.port)
    return served


async def _serve_webhook(kube: Kube, options: Options) -> Webhook | None:
    """The conversion and validating webhooks, with the mounted certificate (followed as it is
    renewed) or one made for this process, the CRDs and the ValidatingWebhookConfiguration (if
    named) pointed at it."""
    if options.webhook == "off":
        return None
    service = None
    host = "127.0.0.1"
    if options.webhook != "local":
        namespace, _slash, name = options.webhook.partition("/")
        service = replace(WEBHOOK_SERVICE, name=name, namespace=namespace)
        host = "0.0.0.0"  # noqa: S104 - in a pod, the Service reaches us on the pod's address
    directory = Path(tempfile.mkdtemp(prefix="delivery-webhook-"))
    running = await webhook.serve(
        kube,
        directory,
        host=host,
        port=options.webhook_port,
        service=service,
        mounted=options.webhook_certificate,
        validating=options.validating_webhook,
    )
    log.info("conversion webhook at %s", running.url)
    if options.validating_webhook:
        log.info(
            "validating webhook at %s (ValidatingWebhookConfiguration %s)",
            running.validation_url,
            options.validating_webhook,
        )
    return running


def informers(
    kube: Kube, options: Options, watches: list[tuple[Watch, Handler]], apis: Discovery | None = None
) -> list[Informer]:
    """One informer per watch (and per namespace when confined to some); watches asked for by
    several controllers share one, which tells each of them. A watch that fails tells `apis` that
    what the server serves may have changed (a CRD removed, an apiserver upgraded in place)."""
    handlers: dict[Watch, list[Handler]] = {}
    for watch, handler in watches:
        handlers.setdefault(watch, []).append(handler)

    def fan_out(told: list[Handler]) -> Handler:
        def tell(event_type: str, body: Object) -> None:
            for handler in told:
                handler(event_type, body)

        return told[0] if len(told) == 1 else tell

    def where(watch: Watch) -> tuple[str | None, ...]:
        if watch.namespace is not None:
            return (watch.namespace,)
        return options.namespaces if watch.kind.namespaced and options.namespaces else (None,)

    on_failure = (lambda _error: apis.stale()) if apis is not None else None
    return [
        Informer(kube, watch, namespace, fan_out(told), on_failure=on_failure)
        for watch, told in handlers.items()
        for namespace in where(watch)
    ]


async def _take_part(
    kube: Kube,
    options: Options,
    controller: RolloutController,
    components: ComponentController,
    *,
    watching: list[Informer],
    synced: asyncio.Event,
    fence: Fence | None,
) -> None:
    """Wait for every informer's first listing, then write: always, or while holding the Lease."""
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

    await asyncio.gather(*(informer.synced.wait() for informer in watching))
    log.info("caches synced: %d rollouts, %d components", len(controller.cache), len(components.cache))
    collector.settle()
    synced.set()
    if options.leader is None:
        lead(True)
        return
    await LeaderElector(kube, options.leader, lead, fence).run()


async def _until_signalled() -> None:
    """Return on the first SIGTERM or SIGINT."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stopping.set)
    try:
        await stopping.wait()
        log.info("stopping")
    finally:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signal_number)


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _discovered(kube: Kube) -> Discovery:
    """What the server serves, read before the watches are chosen: their kinds' versions depend on it."""
    apis = Discovery(kube)
    await apis.refresh()
    return apis


async def run(options: Options) -> None:
    """Run every controller until SIGTERM or SIGINT."""
    collector.tune()
    client = await api_client(options.kubeconfig)
    kube = Kube(client, on_error=metrics.record_api_error)
    # The controllers' writes are fenced by the Lease (with election) and counted for failpoints;
    # the informers only read and the elector writes its Lease unfenced.
    fence = Fence() if options.leader is not None else None
    writer = kube.guarded(fence, Failpoints.from_environment())
    apis = await _discovered(kube)
    controller = RolloutController(
        writer,
        options.workers,
        options.identity,
        tracking=options.tracking,
        discovery=apis,
        controller_id=options.controller_id,
    )
    controller.queue.close()  # opened by _take_part
    batch = Batch(options.rerender_limit, datetime.timedelta(seconds=options.rerender_deadline))
    components = ComponentController(
        writer,
        options.workers,
        templates=options.templates,
        batch=batch,
        apis=apis,
        controller_id=options.controller_id,
    )
    balancers = LoadBalancerClient(options.lb_endpoint) if options.lb_endpoint else None
    components.steps.append(LoadBalancing(components.kube, balancers))
    components.queue.close()  # opened with the Rollout controller's, by _take_part
    steps = metrics.StepClock()
    notifier = Notifier(options.notify)

    def time_steps(rollout: Object, _status: Object, note: EventNote) -> None:
        steps.transition(key_of(rollout), note.reason)

    controller.on_transition += [time_steps, notifier.notify]
    controller.analyst.egress = await options.egress.with_apiserver(client.configuration.host)
    controller.analyst.on_measurement.append(lambda taken: metrics.record_measurement(taken.phase.value))
    # Every watch selected by the shard (`delivery.kube.shard`): another shard's objects never come here.
    watching = informers(kube, options, controller.watches() + components.watches(), apis)
    converter = await _serve_webhook(kube, options)
    synced = asyncio.Event()
    tasks = [
        *(asyncio.create_task(informer.run(), name=informer.name) for informer in watching),
        asyncio.create_task(controller.queue.run()),
        asyncio.create_task(components.queue.run()),
        asyncio.create_task(notifier.run()),
    ]
    taking_part = asyncio.create_task(
        _take_part(kube, options, controller, components, watching=watching, synced=synced, fence=fence)
    )

    def liveness() -> str | None:
        if taking_part.done() and not taking_part.cancelled() and taking_part.exception() is not None:
            return f"leader election stopped: {taking_part.exception()!r}"
        return None

    def readiness() -> str | None:
        if not synced.is_set():
            return "caches not synced"
        if taking_part.done() and options.leader is not None:
            return "not taking part in leader election"
        return None

    unregister = metrics.watch_rollouts(
        controller.cache.values, lambda: ((informer.watch.kind.kind, informer.size) for informer in watching)
    )
    served = (
        await health.serve(
            options.metrics_address, options.metrics_port, liveness=liveness, readiness=readiness
        )
        if options.metrics_port
        else None
    )
    dashboard = await _serve_dashboard(kube, options) if options.dashboard_port else None
    try:
        await _until_signalled()
    finally:
        controller.queue.close()
        components.queue.close()
        await _stop(taking_part)  # after the queue closed: the Lease is released with nothing in flight
        for task in tasks:
            await _stop(task)
        unregister()
        for server in (served, converter, dashboard):
            if server is not None:
                await server.stop()
        if balancers is not None:
            await balancers.close()
        log.info("API requests by verb: %s", json.dumps(dict(kube.requests)))
        await client.close()  # type: ignore[no-untyped-call]  # untyped in kubernetes.aio
