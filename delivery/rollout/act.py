"""Apply a decision to the cluster: the difference only, in the order that keeps traffic safe.

Scale-ups first, then Service selectors, then the traffic weight, then scale-downs, then the old
ReplicaSets beyond the history limit are deleted; nothing is written that already holds. The
strategies have already gated each move on what is applied and ready, so this order is a second
line of defence, not the only one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from delivery.api.rollout import AntiAffinity
from delivery.kube.api import Kind, Kube, KubeError, Object
from delivery.kube.kinds import POD, REPLICA_SET, SERVICE
from delivery.rollout import metadata as ephemeral
from delivery.rollout.affinity import with_anti_affinity
from delivery.rollout.revision import HASH_LABEL, replica_set
from delivery.traffic.route import Route, Router
from strategies.types import Role

log = logging.getLogger(__name__)


class ChildExists(Exception):
    """A child observed missing exists: the watch does not show it (left with another shard's
    label, say), so the Rollout's children are listed before anything more is decided for it."""


@dataclass(frozen=True)
class Workload:
    """What a revision's ReplicaSet is made from."""

    template: dict[str, Any]
    match_labels: dict[str, str]
    revision: str
    min_ready_seconds: int | None = None  # the Rollout's minReadySeconds, for a new ReplicaSet
    anti_affinity: AntiAffinity | None = None
    stable: str | None = None  # the revision a new ReplicaSet's anti-affinity keeps away from
    ephemeral: ephemeral.Injected | None = None  # what a new ReplicaSet's pods carry (canaryMetadata...)


async def scale(
    kube: Kube,
    rollout: Object,
    workload: Workload,
    existing: Mapping[str, Object],
    desired: Mapping[str, int],
    *,
    up: bool,
) -> None:
    """Scale the ReplicaSets that grow (`up`) or shrink; create the current revision's if missing."""
    for revision, replicas in desired.items():
        current = existing.get(revision)
        have = current["spec"].get("replicas", 0) if current else 0
        if (replicas > have) != up or replicas == have:
            continue
        if current is None:
            if revision == workload.revision:
                body = replica_set(
                    rollout, workload.template, workload.match_labels, replicas, workload.revision
                )
                if workload.min_ready_seconds is not None:
                    body["spec"]["minReadySeconds"] = workload.min_ready_seconds
                body["spec"]["template"] = with_anti_affinity(
                    body["spec"]["template"],
                    workload.anti_affinity,
                    stable=workload.stable,
                    revision=revision,
                    namespace=rollout["metadata"]["namespace"],
                )
                if workload.ephemeral is not None:  # no pod yet: the template and the record at once
                    template_metadata = body["spec"]["template"]["metadata"]
                    for part, values in ephemeral.moved(template_metadata, None, workload.ephemeral).items():
                        template_metadata.setdefault(part, {}).update(values)
                    body["metadata"]["annotations"][ephemeral.EPHEMERAL_ANNOTATION] = ephemeral.encoded(
                        workload.ephemeral
                    )
                try:
                    await kube.create(REPLICA_SET, rollout["metadata"]["namespace"], body)
                except KubeError as error:
                    if error.status == 409:
                        raise ChildExists(f"ReplicaSet {body['metadata']['name']} exists unseen") from error
                    raise
            continue  # an old revision that is gone needs nothing
        await resize(kube, current, replicas)


async def resize(kube: Kube, replicaset: Object, replicas: int) -> None:
    """Set a ReplicaSet's replicas if they differ, guarded by the version observed."""
    metadata = replicaset["metadata"]
    if replicaset["spec"].get("replicas", 0) == replicas:
        return
    await kube.patch_guarded(
        REPLICA_SET,
        metadata["namespace"],
        metadata["name"],
        metadata["resourceVersion"],
        {"spec": {"replicas": replicas}},
    )


async def create(kube: Kube, kind: Kind, body: Object) -> None:
    """Create an object observed missing; one made meanwhile (by a reconcile killed after creating
    it, before its watch event came) is what was wanted."""
    try:
        await kube.create(kind, body["metadata"]["namespace"], body)
    except KubeError as error:
        if error.status != 409:
            raise


async def select(kube: Kube, namespace: str, services: Mapping[str, str]) -> dict[str, str]:
    """Point each Service (name -> revision) at its revision; return what each selects afterwards."""
    selected: dict[str, str] = {}
    for name, revision in services.items():
        service = await kube.get(SERVICE, namespace, name)
        if service is None:
            continue
        selector = service["spec"].get("selector") or {}
        if selector.get(HASH_LABEL) != revision:
            await kube.patch_guarded(
                SERVICE,
                namespace,
                name,
                service["metadata"]["resourceVersion"],
                {"spec": {"selector": {HASH_LABEL: revision}}},
            )
        selected[name] = revision
    return selected


async def applied_selectors(kube: Kube, namespace: str, names: Mapping[Role, str]) -> dict[Role, str]:
    """What each Service (role -> name) selects now, by role; a Service without our label selects nothing."""
    result: dict[Role, str] = {}
    for role, name in names.items():
        service = await kube.get(SERVICE, namespace, name)
        revision = ((service or {}).get("spec", {}).get("selector") or {}).get(HASH_LABEL)
        if revision:
            result[role] = revision
    return result


async def route(kube: Kube, router: Router | None, target: Route | None, weight: int, applied: int) -> None:
    if router is not None and target is not None and weight != applied:
        await router.set_weight(kube, target, weight)


async def delete_replicasets(kube: Kube, replicasets: Iterable[Object]) -> None:
    """Delete each ReplicaSet only while it is the one observed, unchanged (uid and resourceVersion
    as preconditions): one scaled up or recreated meanwhile is not history any more. Idempotent: one
    already gone, by an earlier reconcile killed before it saw the deletion, is what was wanted."""
    for rs in replicasets:
        metadata = rs["metadata"]
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]},
        }
        try:
            await kube.request(
                "DELETE", REPLICA_SET.path(metadata["namespace"], metadata["name"]), body=options
            )
        except KubeError as error:
            if error.conflict:  # changed since observed: its event brings a reconcile that decides again
                log.info("ReplicaSet %s changed before it was deleted: %s", metadata["name"], error)
            elif not error.not_found:
                raise


async def keep_metadata(
    kube: Kube,
    workload: Workload,
    existing: Mapping[str, Object],
    wanted: Mapping[str, ephemeral.Injected | None],
    pod_selector: str,
) -> None:
    """Move the ephemeral metadata of existing ReplicaSets (and their pods) to what their roles
    want, and keep the current revision's injected anti-affinity right (`delivery.rollout.metadata`).
    Plain merge patches of the keys concerned, not guarded: each is a target, redone identically."""
    for revision, replicaset in existing.items():
        step = ephemeral.sync(
            replicaset,
            wanted.get(revision),
            anti_affinity=workload.anti_affinity,
            stable=workload.stable,
            current=revision == workload.revision,
        )
        name, namespace = replicaset["metadata"]["name"], replicaset["metadata"]["namespace"]
        if step.replicaset is not None:
            await kube.patch(REPLICA_SET, namespace, name, step.replicaset)
        if not step.pods:
            continue
        uid = replicaset["metadata"]["uid"]
        selector = ",".join(filter(None, (pod_selector, f"{HASH_LABEL}={revision}")))
        for pod in await kube.list(POD, namespace, selector):
            pod_metadata = pod["metadata"]
            owned = any(ref.get("uid") == uid for ref in pod_metadata.get("ownerReferences") or [])
            patch = ephemeral.moved(pod_metadata, step.had, step.wanted)
            if not owned or not patch or pod_metadata.get("deletionTimestamp"):
                continue
            try:
                await kube.patch(POD, namespace, pod_metadata["name"], {"metadata": patch})
            except KubeError as error:
                if not error.not_found:  # a pod gone meanwhile needs nothing
                    raise
        await kube.patch(REPLICA_SET, namespace, name, step.record)
