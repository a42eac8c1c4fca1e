"""The luoji-slb step of a Component's reconcile: a load balancer of our LB service in front of the
Component's NodePort Service, created, bound to every node, recorded, and released on delete.

Order, so that a controller killed at any moment resumes correctly:
1. the finalizer goes on the Component before anything is created, so its deletion waits for us;
2. the load balancer is created with a client token derived from the Component's UID, so a
   create redone after a kill (its id not yet in the status) finds the first one;
3. listeners and backends are bound (a whole replacement: redoing it changes nothing);
4. the Service is annotated with the load balancer's id and address, and annotations of
   Alibaba Cloud's SLB are removed: a Component converted from v1alpha1 `aliyun-slb` changes
   owner of its traffic here, after the new load balancer forwards to the very node ports the
   old one used; the Service keeps its cluster IP, selector and ports, so pods notice nothing;
5. the caller records the id and address in the status.
On delete (or when `svc.type` stops asking for it) the load balancer is deleted first and the
finalizer removed after, so a load balancer is never left behind unrecorded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from delivery.api.component import LoadBalancerStatus, ServiceType
from delivery.api.definition import COMPONENT_GROUP
from delivery.component.adoption import ObjectId
from delivery.component.loadbalancer import (
    Listener,
    LoadBalancer,
    LoadBalancerClient,
    LoadBalancerError,
    Protocol,
)
from delivery.component.render import LOAD_BALANCER_ANNOTATION, Rendered
from delivery.component.steps import StepOutcome
from delivery.kube.api import Kube, Object
from delivery.kube.kinds import COMPONENT, NODE, SERVICE
from delivery.report import Condition, EventNote

FINALIZER = f"{COMPONENT_GROUP}/load-balancer"
ID_ANNOTATION = f"{COMPONENT_GROUP}/load-balancer-id"
ADDRESS_ANNOTATION = f"{COMPONENT_GROUP}/load-balancer-address"
ALIYUN_ANNOTATIONS = (
    "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-",
    "service.beta.kubernetes.io/alicloud-loadbalancer-",
)
"""Prefixes of the annotations Alibaba Cloud's controller reads; ours replace them."""
CONDITION = "LoadBalancerReady"
RETRY = 30.0  # seconds: a load balancer service that failed after its retries is tried again

log = logging.getLogger(__name__)


def bound_service(rendered: Iterable[Object]) -> str | None:
    """The rendered Service that the render marked for a luoji-slb load balancer (`svc.type:
    luoji-slb`, or `LoadBalancer` in a cluster whose profile says luoji-slb), if any."""
    for obj in rendered:
        annotations = obj["metadata"].get("annotations") or {}
        if obj["kind"] == "Service" and annotations.get(LOAD_BALANCER_ANNOTATION) == ServiceType.LUOJI_SLB:
            return str(obj["metadata"]["name"])
    return None


def client_token(component: Object) -> str:
    """One per Component's life: a Component deleted and created again gets a new load balancer."""
    return f"component-{component['metadata']['uid']}"


def name_of(component: Object) -> str:
    metadata = component["metadata"]
    return f"{metadata['namespace']}-{metadata['name']}"


def listeners(service: Object) -> list[Listener]:
    """One listener per Service port that has a node port (every port, once the Service is NodePort)."""
    return [
        Listener(int(port["port"]), int(port["nodePort"]), Protocol(port.get("protocol", "TCP")))
        for port in service.get("spec", {}).get("ports", [])
        if port.get("nodePort")
    ]


def backends(nodes: Sequence[Object]) -> list[str]:
    """Every schedulable node's internal address: kube-proxy forwards a node port on each of them."""
    addresses = []
    for node in nodes:
        if node.get("spec", {}).get("unschedulable"):
            continue
        for address in node.get("status", {}).get("addresses", []):
            if address.get("type") == "InternalIP":
                addresses.append(str(address["address"]))
                break
    return sorted(addresses)


def service_patch(service: Object, load_balancer: LoadBalancerStatus | None) -> dict[str, Any] | None:
    """The merge patch that points the Service's annotations at `load_balancer` (None: at none),
    or None when they already do."""
    annotations = service["metadata"].get("annotations") or {}
    changes: dict[str, str | None] = {
        key: None for key in annotations if key.startswith(ALIYUN_ANNOTATIONS) and load_balancer is not None
    }
    desired = (
        {ID_ANNOTATION: load_balancer.id, ADDRESS_ANNOTATION: load_balancer.address}
        if load_balancer is not None
        else {ID_ANNOTATION: None, ADDRESS_ANNOTATION: None}
    )
    changes.update({key: value for key, value in desired.items() if annotations.get(key) != value})
    return {"metadata": {"annotations": changes}} if changes else None


class LoadBalancing:
    """The step (a `delivery.component.steps.Step`), with the LB service's client (None when
    the controller has no --lb-endpoint)."""

    def __init__(self, kube: Kube, client: LoadBalancerClient | None) -> None:
        self.kube = kube
        self.client = client

    async def __call__(
        self, component: Object, rendered: Rendered | None, live: Mapping[ObjectId, Object]
    ) -> StepOutcome:
        """Ensure the load balancer of the Service the render marked, or release it when there is
        none (`rendered` is None while the Component is being deleted)."""
        name = bound_service(rendered.objects) if rendered is not None else None
        if name is not None:
            return await self.reconcile(component, live.get(("Service", name)), want=True)
        annotated = (
            obj
            for obj in live.values()
            if obj["kind"] == "Service" and ID_ANNOTATION in (obj["metadata"].get("annotations") or {})
        )
        return await self.reconcile(component, next(annotated, None), want=False)

    async def reconcile(self, component: Object, service: Object | None, *, want: bool) -> StepOutcome:
        """`service`: the one to bind when `want`, else the one to take our annotations off."""
        finalizers = component["metadata"].get("finalizers") or []
        recorded = _recorded(component)
        deleting = bool(component["metadata"].get("deletionTimestamp"))
        if (deleting or not want) and FINALIZER not in finalizers and recorded is None:
            return StepOutcome(component)
        if self.client is None:
            message = "svc.type luoji-slb needs the controller's --lb-endpoint (the LB service's URL)"
            condition = Condition(CONDITION, False, "NoLoadBalancerService", message)
            return StepOutcome(component, (condition,), requeue_after=RETRY)
        try:
            if deleting or not want:
                return await self._release(self.client, component, service, recorded)
            return await self._ensure(self.client, component, service, recorded)
        except LoadBalancerError as error:
            log.warning("%s: %s", name_of(component), error)
            condition = Condition(CONDITION, False, "LoadBalancerServiceError", str(error))
            return StepOutcome(component, (condition,), requeue_after=RETRY)

    async def _ensure(
        self,
        client: LoadBalancerClient,
        component: Object,
        service: Object | None,
        recorded: LoadBalancerStatus | None,
    ) -> StepOutcome:
        component = await self._set_finalizer(component, present=True)
        notes: list[EventNote] = []
        balancer = await client.get(recorded.id) if recorded is not None else None
        if balancer is None:
            labels = {
                "namespace": component["metadata"]["namespace"],
                "component": component["metadata"]["name"],
            }
            balancer = await client.create(name_of(component), client_token(component), labels)
            notes.append(
                EventNote("LoadBalancerCreated", f"load balancer {balancer.id} at {balancer.address}")
            )
        status = LoadBalancerStatus(id=balancer.id, address=balancer.address)
        if service is None or not listeners(service):
            waiting = Condition(CONDITION, False, "WaitingForService", "waiting for the Service's node ports")
            return StepOutcome(component, (waiting,), _status(status), tuple(notes), requeue_after=RETRY)
        wanted_listeners = listeners(service)
        nodes = backends(await self.kube.list(NODE))
        if not balancer.binds(wanted_listeners, nodes):
            balancer = await client.bind(balancer.id, wanted_listeners, nodes)
            notes.append(EventNote("LoadBalancerBound", _bound(balancer)))
        patch = service_patch(service, status)
        if patch is not None:
            metadata = service["metadata"]
            await self.kube.patch(SERVICE, metadata["namespace"], metadata["name"], patch)
            notes.append(
                EventNote("ServiceSwitched", f"Service {metadata['name']} now served by {balancer.id}")
            )
        ready = Condition(CONDITION, True, "Bound", _bound(balancer))
        return StepOutcome(component, (ready,), _status(status), tuple(notes))

    async def _release(
        self,
        client: LoadBalancerClient,
        component: Object,
        service: Object | None,
        recorded: LoadBalancerStatus | None,
    ) -> StepOutcome:
        balancer: LoadBalancer | None = None
        if recorded is not None:
            balancer = await client.get(recorded.id)
        if balancer is None:  # created, then killed before its id was recorded
            balancer = await client.find(client_token(component))
        notes: list[EventNote] = []
        if balancer is not None:
            await client.delete(balancer.id)
            notes.append(EventNote("LoadBalancerDeleted", f"load balancer {balancer.id} released"))
        if service is not None and not component["metadata"].get("deletionTimestamp"):
            patch = service_patch(service, None)
            if patch is not None:
                metadata = service["metadata"]
                await self.kube.patch(SERVICE, metadata["namespace"], metadata["name"], patch)
        component = await self._set_finalizer(component, present=False)
        released = bool(component["metadata"].get("deletionTimestamp"))
        return StepOutcome(component, (), _status(None), tuple(notes), released=released)

    async def _set_finalizer(self, component: Object, *, present: bool) -> Object:
        metadata = component["metadata"]
        finalizers: list[str] = list(metadata.get("finalizers") or [])
        if (FINALIZER in finalizers) == present:
            return component
        changed = [*finalizers, FINALIZER] if present else [f for f in finalizers if f != FINALIZER]
        return await self.kube.patch_guarded(
            COMPONENT,
            metadata["namespace"],
            metadata["name"],
            metadata["resourceVersion"],
            {"metadata": {"finalizers": changed or None}},
        )


def _status(load_balancer: LoadBalancerStatus | None) -> dict[str, Any]:
    return {"loadBalancer": load_balancer.to_wire() if load_balancer is not None else None}


def _recorded(component: Object) -> LoadBalancerStatus | None:
    block = (component.get("status") or {}).get("loadBalancer")
    return LoadBalancerStatus.model_validate(block) if block else None


def _bound(balancer: LoadBalancer) -> str:
    ports = ", ".join(f"{listener.port}->{listener.backend_port}" for listener in balancer.listeners)
    return f"{balancer.id} at {balancer.address}: {ports} on {len(balancer.backends)} nodes"
