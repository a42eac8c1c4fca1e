"""The Component controller: render, compare with what runs, apply the difference, report.

Level-based: a reconcile reads the Component and the objects it owns from the watch caches,
renders the desired objects (`delivery.component.render`, pure), decides per object what to
apply (`adoption`: take over existing objects without touching their spec) and whether it
already holds (`drift`), applies only what does not, prunes what is no longer rendered, and
writes one status patch when the status changes. A second reconcile of an unchanged Component
writes nothing. Every object written gets an Event first (named by a hash of the change, so a
controller killed between the Event and the write re-creates the same Event and moves on).

Writes are server-side applies under the field manager `delivery-component`, distinct from the
Rollout controller's, so neither takes the other's fields (the Rollout controller narrows the
selectors of the Services a Component renders; the Component never sets those keys).

An autoscaled Component's workload is applied without `spec.replicas` (its HorizontalPodAutoscaler
sets them; the field is handed over first, `delivery.component.autoscaling`); a fixed-size one
scaled by someone else is put back with one `ReplicasRestored` Event, and Ready is kept through
either kind of scale while the workload's status catches up (`status.held_ready`).

A Component annotated `component.luojilab.com/unmanaged: "true"` is left alone entirely: no
write to it or its objects, until the annotation goes.

After the objects are applied, `steps` run in order (`delivery.component.steps`; the load
balancer is one). A Component rendered from older inputs waits for the batch re-render's turn
(`delivery.component.rerender`, which holds the batch's state and reports it on the ClusterProfile).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from delivery import templating_budget
from delivery.api.component import ComponentSpecV1Beta1
from delivery.api.profile import ClusterProfileSpec
from delivery.component import adoption, autoscaling, drift, partition
from delivery.component.adoption import ObjectId, object_id
from delivery.component.batch import Batch
from delivery.component.discovered import discovered_status, needs_report
from delivery.component.inputs import DEFAULT_PROFILE, Inputs
from delivery.component.render import NAME_LABEL, RENDERABLE, Cluster, Rendered, render
from delivery.component.rerender import RECHECK as BATCH_RECHECK
from delivery.component.rerender import Rerender
from delivery.component.scope import unmanaged
from delivery.component.status import (
    READY,
    RECONCILED,
    held_ready,
    rendered_objects,
    status_patch,
    workload_ready,
)
from delivery.component.steps import Steps
from delivery.component.templating import TEMPLATES_CONFIGMAP, TEMPLATES_NAMESPACE, RenderError, TemplateSet
from delivery.controllers.cache import Cache, ObjectKey, key_of
from delivery.controllers.workqueue import WorkQueue
from delivery.kube import discovery, shard
from delivery.kube.api import Kind, Kube, KubeError, Object
from delivery.kube.discovery import Discovery, Served
from delivery.kube.informer import Handler, Watch, trimmed
from delivery.kube.kinds import (
    CLUSTER_PROFILE,
    COMPONENT,
    CONFIG_MAP,
    DAEMON_SET,
    DEPLOYMENT,
    ROLLOUT,
    SERVICE,
    STATEFUL_SET,
)
from delivery.report import Condition, EventNote, now, record_event, sequence_of

log = logging.getLogger(__name__)

FIELD_MANAGER = "delivery-component"
OWNED = (DEPLOYMENT, STATEFUL_SET, DAEMON_SET, SERVICE)
"""The kinds a Component renders besides Rollouts and `DISCOVERED`, watched by the Component's name label."""
DISCOVERED = (discovery.INGRESS, discovery.HORIZONTAL_POD_AUTOSCALER)
"""The kinds a Component renders whose version differs between clusters: watched in the version
this cluster serves (`delivery.kube.discovery`), not at all when it serves none we speak."""


class NotApplied(Exception):
    """Nothing was applied, for a reason said in the Reconciled condition and a Warning Event."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Owned:
    """The objects each Component owns, by (kind, name), as the watches last showed them."""

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, dict[ObjectId, Object]] = {}

    def of(self, owner: ObjectKey) -> dict[ObjectId, Object]:
        return self._objects.get(owner, {})

    def observe(self, event_type: str | None, owner: ObjectKey, body: Object) -> None:
        objects = self._objects.setdefault(owner, {})
        key = object_id(body)
        if event_type == "DELETED":
            objects.pop(key, None)
            if not objects:
                del self._objects[owner]
        elif key not in objects or _version(body) >= _version(objects[key]):
            objects[key] = body


def _version(body: Object) -> int:
    return int(body["metadata"].get("resourceVersion") or 0)


def _served_kinds(served: Served) -> list[Kind]:
    """The `DISCOVERED` kinds a Component may own, in the versions `served` says the cluster has."""
    return [kind for api in DISCOVERED if (kind := served.kind(api)) is not None]


class ComponentController:
    def __init__(
        self,
        kube: Kube,
        workers: int,
        *,
        profile: str = DEFAULT_PROFILE,
        templates: tuple[str, str] = (TEMPLATES_NAMESPACE, TEMPLATES_CONFIGMAP),
        batch: Batch | None = None,
        apis: Discovery | None = None,
        controller_id: str | None = None,
    ) -> None:
        self.kube = kube.managed_as(FIELD_MANAGER)
        self.controller_id = controller_id  # the shard: its Components and what they own are watched
        self.discovery = apis or Discovery(self.kube)
        self.profile_name = profile
        self.templates_ref = templates
        self.steps = Steps(self.kube)
        self.cache = Cache()
        self.owned = Owned()
        self.queue: WorkQueue[ObjectKey] = WorkQueue(self.reconcile, workers, "components")
        self.rerender = Rerender(
            self.kube,
            batch or Batch(limit=5, deadline=datetime.timedelta(minutes=10)),
            profile,
            self.cache.values,
            self.queue.add,
        )
        self.templates = TemplateSet.shipped()
        self.profile = ClusterProfileSpec()
        self.profile_error: str | None = None
        self.profile_body: Object | None = None  # as last read: its status says what was discovered
        self.served = Served()
        self._cluster_known = False
        self._cluster_lock = asyncio.Lock()

    # -- watches ---------------------------------------------------------------------------------

    def watches(self) -> list[tuple[Watch, Handler]]:
        """What this controller caches: the shard's Components, the objects they own (by the name
        label and the shard's, server-side: each carries its Component's labels), the
        ClusterProfiles and the templates' ConfigMap, watched by name in its namespace (a Role
        there allows that one name). Rollouts come on the Rollout controller's stream (the same
        Watch, so one informer serves both). The `DISCOVERED` kinds are watched as the discovery
        last read says they are served: the operator reads it before asking."""
        namespace, name = self.templates_ref
        by_name = f"metadata.name={name}"
        served = self.discovery.served
        discovered = _served_kinds(served)
        for api in DISCOVERED:
            if served.kind(api) is None:
                log.warning("not watching %ss: %s", api.kind, discovery.ApiNotServed(api))
        ours = shard.selector(self.controller_id)
        owned = shard.of_children(NAME_LABEL, self.controller_id)
        return [
            (Watch(COMPONENT, label_selector=ours), self._on_component),
            *((Watch(kind, label_selector=owned), self._on_owned) for kind in (*OWNED, *discovered)),
            (Watch(ROLLOUT, label_selector=ours), self._on_rollout),
            (Watch(CLUSTER_PROFILE), self._on_profile),
            (Watch(CONFIG_MAP, namespace=namespace, field_selector=by_name), self._on_configmap),
        ]

    def _on_component(self, event_type: str, body: Object) -> None:
        self.queue.add(self.cache.observe(event_type, body))

    def _on_owned(self, event_type: str, body: Object) -> None:
        metadata = body["metadata"]
        owner = (metadata.get("namespace", ""), metadata["labels"][NAME_LABEL])
        self.owned.observe(event_type, owner, body)
        self.queue.add(owner)

    def _on_rollout(self, event_type: str, body: Object) -> None:
        if NAME_LABEL in (body["metadata"].get("labels") or {}):
            self._on_owned(event_type, body)

    def _on_profile(self, event_type: str, body: Object) -> None:
        if body["metadata"]["name"] == self.profile_name:
            before = (self.profile, self.profile_error)
            self._set_profile(None if event_type == "DELETED" else body)
            if (self.profile, self.profile_error) != before:  # not a write of its status (ours)
                self.rerender_all()
            elif event_type != "DELETED":
                self.queue.add(self.profile_key)  # its status may not say what was discovered yet

    def _on_configmap(self, event_type: str, body: Object) -> None:
        metadata = body["metadata"]
        if (metadata.get("namespace"), metadata["name"]) == self.templates_ref:
            self._set_templates(None if event_type == "DELETED" else body)
            self.rerender_all()

    def rerender_all(self) -> None:
        """The templates or the profile changed: every Component is rendered again, and the
        profile's status told what was discovered."""
        self.queue.add(self.profile_key)
        for key in list(self.cache.keys()):
            self.queue.add(key)

    @property
    def profile_key(self) -> ObjectKey:
        """The ClusterProfile's key in the work queue: its reconcile writes what discovery found in
        its status (no Component has an empty namespace)."""
        return ("", self.profile_name)

    # -- what the cluster is ------------------------------------------------------------------

    def _set_profile(self, body: Object | None) -> None:
        self.profile_body = body
        try:
            self.profile = ClusterProfileSpec.model_validate((body or {}).get("spec") or {})
            self.profile_error = None
        except ValidationError as error:
            self.profile_error = f"ClusterProfile {self.profile_name}: {error}"

    def _set_templates(self, body: Object | None) -> None:
        origin = "ConfigMap {}/{}".format(*self.templates_ref)
        self.templates = TemplateSet.shipped().replace((body or {}).get("data") or {}, origin)

    async def _know_cluster(self) -> None:
        """Before the first render: the profile, the templates and what the server serves, so
        that a restarted controller never renders with the shipped defaults in between. Then, at
        each reconcile, the discovery again if it was found stale (a kind missing, a watch that
        failed: `delivery.kube.discovery`), and the ClusterProfile's status told what it found."""
        async with self._cluster_lock:
            if not self._cluster_known:
                self._set_profile(await self.kube.get(CLUSTER_PROFILE, None, self.profile_name))
                self._set_templates(await self.kube.get(CONFIG_MAP, *self.templates_ref))
                self._cluster_known = True
            served = await self.discovery.current()
            if served != self.served:
                ingress = discovery.INGRESS.kind
                moved = self.served.server is not None and (
                    self.served.versions.get(ingress) != served.versions.get(ingress)
                )
                self.served = served
                if moved:  # an input of every render
                    self.rerender_all()
            await self._report_discovered()

    async def _report_discovered(self) -> None:
        """The server's version and the API versions used, in the ClusterProfile's status
        (`delivery.component.discovered`): written when they differ from what it says."""
        profile = self.profile_body
        if profile is None or self.served.server is None:
            return
        wanted = discovered_status(self.served)
        if not needs_report(profile.get("status") or {}, wanted):
            return
        try:
            written = await self.kube.patch(
                CLUSTER_PROFILE, None, profile["metadata"]["name"], {"status": wanted}, subresource="status"
            )
        except KubeError as error:
            if error.not_found:  # deleted meanwhile: its watch event says so
                return
            raise
        self.profile_body = written

    def cluster(self) -> Cluster:
        return Cluster(self.profile, self.served.versions.get(discovery.INGRESS.kind, frozenset()))

    # -- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> float | None:
        if key == self.profile_key:
            await self._know_cluster()
            return None
        component = self.cache.get(key)
        if component is None:
            self.queue.forget(key)
            return None
        if unmanaged(component):
            return None
        await self._know_cluster()
        if shard.needs_relabel(component.get("status") or {}, self.controller_id):
            await self._find_owned(component)
        live = dict(self.owned.of(key))
        if component["metadata"].get("deletionTimestamp"):
            return (await self.steps.run(component, None, live, self._observe)).requeue_after
        try:
            return await self._converge(component, live)
        except NotApplied as failure:
            await self._failed(component, failure.reason, str(failure))
            return None

    async def render(self, component: Object) -> Rendered:
        """`component` rendered with this cluster's profile and templates: off the loop when the
        cluster replaced any (they render in a worker, within a budget, and the wait blocks)."""
        if self.profile_error is not None:
            raise NotApplied("ProfileInvalid", self.profile_error)
        try:
            if self.templates.replaced:
                return await templating_budget.off_loop(render, component, self.cluster(), self.templates)
            return render(component, self.cluster(), self.templates)
        except RenderError as error:
            raise NotApplied("RenderFailed", str(error)) from error

    async def _find_owned(self, component: Object) -> None:
        """What the Component owns that the watches may miss (rendered by a version that did not
        label by shard, or left with another shard's label when the Component moved): one listing
        per kind by its name, unselected by shard, each object it owns recorded at once. The apply
        that follows puts each in this shard as a difference (its labels are rendered from the
        Component's), so nothing is decided (a StatefulSet's partition, a prune) without them."""
        metadata = component["metadata"]
        key = key_of(component)
        kinds = [ROLLOUT, *OWNED, *_served_kinds(self.served)]
        for kind in kinds:
            for item in await self.kube.list(kind, metadata["namespace"], f"{NAME_LABEL}={metadata['name']}"):
                body = trimmed({"apiVersion": kind.api_version, "kind": kind.kind, **item})
                if adoption.owned_by(body, metadata["uid"]):
                    self.owned.observe("MODIFIED", key, body)

    async def _converge(self, component: Object, live: dict[ObjectId, Object]) -> float | None:
        revision = Inputs(self.cluster(), self.templates).revision
        if await self.rerender.held_back(component, revision):
            return BATCH_RECHECK  # relabelled when its turn comes: nothing is applied before
        rendered, again = self._release(component, await self.render(component), live)
        self._served_or_refused(rendered)
        try:
            live, template_written = await self._apply(component, rendered, live)
        except adoption.Conflict as error:
            raise NotApplied("Conflict", str(error)) from error
        except KubeError as error:
            if error.conflict:
                raise  # a stale read: the work queue retries with backoff, by then the cache is fresh
            raise NotApplied("ApplyFailed", str(error)) from error
        await self._prune(component, rendered, live)
        outcome = await self.steps.run(component, rendered, live, self._observe)
        if outcome.released:
            return None
        workload = live.get(object_id(rendered.workload))
        ready = workload_ready(workload, _minimum(rendered))
        ready = held_ready(ready, outcome.component, workload, revision, template_written=template_written)
        await self._ready_event(outcome.component, ready)
        names = ", ".join(f"{obj['kind']} {obj['metadata']['name']}" for obj in rendered.objects)
        conditions = [Condition(RECONCILED, True, "Applied", f"rendered {names}"), ready, *outcome.conditions]
        await self._write_status(
            outcome.component,
            conditions,
            objects=rendered_objects(rendered.objects),
            autoscaling=autoscaling.status(
                rendered.autoscaling,
                component["metadata"]["name"],
                live.get((discovery.HORIZONTAL_POD_AUTOSCALER.kind, component["metadata"]["name"])),
            ),
            **_rendered_from(component, revision),
            **outcome.status,
            # Everything it renders was applied with its shard label (or held already).
            **{shard.RECORDED: shard.recorded(self.controller_id)},
        )
        settling = await self.rerender.settle(revision)
        delays = [delay for delay in (again, outcome.requeue_after, settling) if delay is not None]
        return min(delays, default=None)

    def _served_or_refused(self, rendered: Rendered) -> None:
        """Nothing is applied when an object is of a version the cluster does not serve (an
        HorizontalPodAutoscaler where autoscaling/v2 is not served): a condition names it, and
        the discovery is read again before the next try, in case it came since."""
        for api in DISCOVERED:
            for obj in rendered.objects:
                served = self.served.versions.get(api.kind, frozenset())
                if obj["kind"] == api.kind and obj["apiVersion"] not in served:
                    self.discovery.stale()
                    raise NotApplied(
                        "ApiNotServed",
                        f"{api.kind} {obj['metadata']['name']} is {obj['apiVersion']}, which this cluster "
                        f"does not serve (it serves {api.kind} as: {', '.join(sorted(served)) or 'nothing'})",
                    )

    def _release(
        self, component: Object, rendered: Rendered, live: Mapping[ObjectId, Object]
    ) -> tuple[Rendered, float | None]:
        """A StatefulSet's release: its partition for this moment (`delivery.component.partition`)."""
        if rendered.workload_kind != STATEFUL_SET.kind:
            return rendered, None
        try:
            steps = partition.steps_of(ComponentSpecV1Beta1.model_validate(component["spec"]).release)
        except RenderError as error:
            raise NotApplied("RenderFailed", str(error)) from error
        workload = rendered.workload
        promoted = partition.promoted_step(component["metadata"].get("annotations") or {})
        moment = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        released, again = partition.released(workload, live.get(object_id(workload)), steps, promoted, moment)
        objects = tuple(released if obj is workload else obj for obj in rendered.objects)
        return dataclasses.replace(rendered, objects=objects), again

    async def _apply(
        self, component: Object, rendered: Rendered, live: dict[ObjectId, Object]
    ) -> tuple[dict[ObjectId, Object], bool]:
        """Apply what does not hold yet; the live objects afterwards, and whether the workload was
        written for more than its replicas (a restore of `spec.replicas` alone is told as one
        `ReplicasRestored` Event, and leaves Ready as it was: see `status.held_ready`)."""
        metadata = component["metadata"]
        for obj in rendered.objects:
            if object_id(obj) not in live:  # not ours yet, or our watch has not shown it: look
                found = await self.kube.get(_kind(obj), metadata["namespace"], obj["metadata"]["name"])
                if found is not None:
                    live[object_id(obj)] = found
        wanted = adoption.desired(rendered.objects, live, metadata["uid"], metadata.get("generation", 1))
        template_written = False
        for desired in wanted:
            current = live.get(object_id(desired.obj))
            if not drift.needs_apply(desired.obj, current):
                continue
            scaled = None if desired.adopting else drift.scaled(desired.obj, current)
            if scaled is not None:
                verb = "ReplicasRestored"
                await self._restored_event(component, desired.obj, current, *scaled)
            else:
                verb = "Adopted" if desired.adopting else ("Created" if current is None else "Updated")
                await self._event(component, verb, desired.obj, current)
                template_written |= object_id(desired.obj) == object_id(rendered.workload)
            written = await self._write(desired, current)
            log.info(
                "%s/%s: %s %s %s", metadata["namespace"], metadata["name"], verb.lower(), *object_id(written)
            )
            live[object_id(written)] = written
            self.owned.observe("MODIFIED", key_of(component), written)
        return live, template_written

    async def _write(self, desired: adoption.Desired, current: Object | None) -> Object:
        """Apply `desired`; replace the object whole first when what others set stands in the way:
        an adopted object rendered in full the first time, or an item someone added to a list under
        another key (a port renumbered by hand) that server-side apply keeps beside ours."""
        kind = _kind(desired.obj)
        if current is not None and autoscaling.may_hand_over(desired.obj, current):
            await self._hand_over(kind, current)
        if current is not None and desired.replacing:
            await self._replace(kind, desired.obj, current)
            return await self.kube.apply(kind, desired.obj)
        try:
            written = await self.kube.apply(kind, desired.obj)
        except KubeError as error:
            if current is None or error.status != 422:
                raise
            log.info("apply refused (%s); replacing %s %s whole", error, *object_id(current))
        else:
            if current is None or drift.holds(written, desired.obj):
                return written
            log.info("others' fields keep %s %s from its render; replacing it whole", *object_id(current))
        await self._replace(kind, desired.obj, current)
        return await self.kube.apply(kind, desired.obj)

    async def _hand_over(self, kind: Kind, current: Object) -> None:
        """Hand an autoscaled workload's replicas over before applying it without them (see
        `delivery.component.autoscaling`): read whose they are, since the caches drop that."""
        metadata = current["metadata"]
        fresh = await self.kube.get(kind, metadata["namespace"], metadata["name"])
        handover = autoscaling.handover(fresh, FIELD_MANAGER) if fresh is not None else None
        if handover is not None:
            await self.kube.managed_as(autoscaling.HANDOVER_MANAGER).apply(kind, handover)

    async def _replace(self, kind: Kind, desired: Object, current: Object) -> None:
        body = adoption.replacement(desired, current)
        metadata = body["metadata"]
        await self.kube.request("PUT", kind.path(metadata["namespace"], metadata["name"]), body=body)

    async def _prune(self, component: Object, rendered: Rendered, live: dict[ObjectId, Object]) -> None:
        """Delete what the Component owns and no longer renders. A workload replaced by one of
        another kind (a Deployment by a Rollout) goes only once its successor is ready."""
        uid = component["metadata"]["uid"]
        wanted = {object_id(obj) for obj in rendered.objects}
        successor_ready = workload_ready(live.get(object_id(rendered.workload)), _minimum(rendered)).status
        for key, obj in list(live.items()):
            if key in wanted or not adoption.owned_by(obj, uid):
                continue
            if obj["kind"] in adoption.WORKLOAD_KINDS and not successor_ready:
                continue
            await self._event(component, "Deleted", obj, obj)
            await self.kube.delete(_kind(obj), obj["metadata"]["namespace"], obj["metadata"]["name"])
            del live[key]
            self.owned.observe("DELETED", key_of(component), obj)

    def _observe(self, component: Object) -> None:
        """The Component as a step left it (a finalizer moves its version): what is read next."""
        self.cache.observe("MODIFIED", component)

    async def _failed(self, component: Object, reason: str, message: str) -> None:
        """Say why nothing (more) was applied; the objects already running stay as they are.
        Looked at again when the Component, its objects, the templates or the profile change."""
        metadata = component["metadata"]
        log.warning("%s/%s: %s: %s", metadata["namespace"], metadata["name"], reason, message)
        note = EventNote(reason, message, warning=True)
        sequence = sequence_of(
            metadata["uid"], metadata.get("generation"), self.templates.digest, reason, message
        )
        await record_event(self.kube, component, sequence, note)
        await self._write_status(component, [Condition(RECONCILED, False, reason, message)])

    async def _ready_event(self, component: Object, ready: Condition) -> None:
        """An Event when Ready turns, for people and tools that follow Events rather than status
        (nothing on a first, not-yet-ready render). Named by the turn it reports, so a controller
        killed before writing the status reports it once."""
        conditions = (component.get("status") or {}).get("conditions") or []
        before = next((c for c in conditions if c["type"] == READY), None)
        was_ready = before is not None and before["status"] == "True"
        if was_ready == ready.status or (before is None and not ready.status):
            return
        since = before["lastTransitionTime"] if before else ""
        sequence = sequence_of(component["metadata"]["uid"], READY, ready.status, since)
        note = EventNote("Ready" if ready.status else "NotReady", ready.message, warning=not ready.status)
        await record_event(self.kube, component, sequence, note)

    async def _restored_event(
        self, component: Object, obj: Object, current: Object | None, wanted: int, found: int
    ) -> None:
        """One Event per scale undone, named by the scaled version it undoes."""
        version = current["metadata"].get("resourceVersion") if current else None
        sequence = sequence_of(component["metadata"]["uid"], "ReplicasRestored", *object_id(obj), version)
        message = (
            f"Restored {obj['kind']} {obj['metadata']['name']} to {wanted} replicas (spec.replicas), "
            f"scaled to {found} by someone else; set spec.autoscaling to let an autoscaler scale it"
        )
        await record_event(self.kube, component, sequence, EventNote("ReplicasRestored", message))

    async def _event(self, component: Object, verb: str, obj: Object, current: Object | None) -> None:
        version = current["metadata"].get("resourceVersion") if current else None
        annotations = obj["metadata"].get("annotations") or {}
        sequence = sequence_of(component["metadata"]["uid"], verb, *object_id(obj), version, annotations)
        message = f"{verb} {obj['kind']} {obj['metadata']['name']}"
        await record_event(self.kube, component, sequence, EventNote(verb, message))

    async def _write_status(self, component: Object, conditions: Sequence[Condition], **fields: Any) -> None:
        patch = status_patch(component, conditions, now(), **fields)
        if patch is None:
            return
        metadata = component["metadata"]
        written = await self.kube.patch_guarded(
            COMPONENT,
            metadata["namespace"],
            metadata["name"],
            metadata["resourceVersion"],
            {"status": patch},
            subresource="status",
        )
        self.cache.observe("MODIFIED", written)


def _rendered_from(component: Object, revision: str) -> dict[str, Any]:
    """The status fields that say which inputs the objects were rendered from, and since when."""
    status = component.get("status") or {}
    generation = component["metadata"].get("generation")
    moved = status.get("renderedRevision") != revision or status.get("observedGeneration") != generation
    return {"renderedRevision": revision, "renderedAt": now() if moved else status.get("renderedAt")}


def _minimum(rendered: Rendered) -> int | None:
    """The autoscaler's floor, when the Component is autoscaled (see `status.workload_ready`)."""
    return rendered.autoscaling.min_replicas if rendered.autoscaling else None


def _kind(obj: Object) -> Kind:
    return RENDERABLE[obj["apiVersion"], obj["kind"]]


__all__ = ["READY", "RECONCILED", "ComponentController"]
