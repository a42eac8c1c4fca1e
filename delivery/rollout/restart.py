"""`spec.restartAt`: every pod of the Rollout made before that moment is replaced, without a new
revision (Argo Rollouts' restart): each is evicted and its own ReplicaSet makes another.

Argo's rules, kept: pods go in the order stable ReplicaSet, current one, then the others oldest
first; at most max(maxUnavailable, 1) of them at a time (rolling: its maxUnavailable; canary and
blue-green, which have none: one), counted over every pod of the Rollout, so a pod is evicted only
when all the others are available; eviction rather than deletion, so PodDisruptionBudgets hold
(an eviction they refuse is tried again later); a restart also runs mid-release, e.g. while a
canary is paused. One stricter rule: no pod is evicted in a reconcile that scales a ReplicaSet,
since the availability it was counted on is then about to change (Argo ends such a reconcile early
for the same reason). When no pod older than restartAt is left, `status.restartedAt` is set to it.

Level-based: each reconcile decides afresh from the pods as listed, so a controller killed after
any eviction sees that pod going (or its replacement not yet available) and waits. The decision is
`plan_restart`, pure; `restart` lists the pods and evicts.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from delivery.api.rollout import StrategyName
from delivery.kube.api import Kube, KubeError, Object
from delivery.kube.kinds import POD
from delivery.rollout.plan import Plan
from delivery.rollout.revision import HASH_LABEL
from strategies import fenceposts

log = logging.getLogger(__name__)

RESTART_CHECK = 5.0
"""seconds: a restart in progress is looked at again this soon, even if no ReplicaSet's counts
changed (a pod replaced faster than the counts move, an eviction a PodDisruptionBudget refused)."""
TOO_MANY_REQUESTS = 429  # an eviction refused by a PodDisruptionBudget


@dataclass(frozen=True)
class PodFacts:
    name: str
    uid: str
    revision: str
    created: datetime.datetime
    available: bool  # Ready, and not being deleted
    deleting: bool


@dataclass(frozen=True)
class Restart:
    evict: tuple[PodFacts, ...] = ()
    restarted_at: str | None = None  # status.restartedAt after this reconcile
    wait: float | None = None  # seconds until the next look, when the restart is not done


def parse(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def concurrency(plan: Plan) -> int:
    """How many pods may be restarting at once: the rolling update's maxUnavailable, at least one."""
    if plan.kind is not StrategyName.ROLLING:
        return 1
    _surge, unavailable = fenceposts(plan.max_surge, plan.max_unavailable, plan.replicas)
    return max(unavailable, 1)


def pending(restart_at: str | None, restarted_at: str | None, now: datetime.datetime) -> Restart | None:
    """The outcome when no pod needs looking at (no restart asked, done, or not due yet: then the
    wait until it is); None when the pods must be listed."""
    moment = parse(restart_at)
    if moment is None or moment == parse(restarted_at):
        return Restart(restarted_at=restarted_at)
    if now < moment:
        return Restart(restarted_at=restarted_at, wait=(moment - now).total_seconds())
    return None


def plan_restart(
    *,
    restart_at: str,
    restarted_at: str | None,
    pods: Sequence[PodFacts],
    priority: Sequence[str],
    replicas: int,
    total: int,
    concurrent: int,
    scaling: bool,
) -> Restart:
    """Which pods to evict now, for a restart that is due. `priority`: revisions in the order their
    pods go; `replicas` the Rollout's, `total` the ReplicaSets' summed (above replicas mid-canary);
    `scaling`: this reconcile changes a ReplicaSet's size."""
    moment = datetime.datetime.fromisoformat(restart_at)
    old = [pod for pod in pods if pod.created < moment]
    if not old:
        return Restart(restarted_at=restart_at)
    if scaling:
        return Restart(restarted_at=restarted_at, wait=RESTART_CHECK)
    available = sum(1 for pod in pods if pod.available)
    allowed = available - (max(replicas, total) - concurrent)
    rank = {revision: index for index, revision in enumerate(priority)}
    candidates = sorted(
        (pod for pod in old if not pod.deleting),
        key=lambda pod: (rank.get(pod.revision, len(rank)), pod.created, pod.name),
    )
    return Restart(tuple(candidates[: max(allowed, 0)]), restarted_at, RESTART_CHECK)


def pod_facts(pod: Object) -> PodFacts:
    metadata, status = pod["metadata"], pod.get("status") or {}
    deleting = bool(metadata.get("deletionTimestamp"))
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return PodFacts(
        name=metadata["name"],
        uid=metadata["uid"],
        revision=(metadata.get("labels") or {}).get(HASH_LABEL, ""),
        created=datetime.datetime.fromisoformat(metadata["creationTimestamp"]),
        available=ready and not deleting,
        deleting=deleting,
    )


def priority(stable: str | None, current: str, replicasets: Mapping[str, Object]) -> list[str]:
    """Stable first, then the current revision, then the others oldest first (`replicasets` is
    oldest first)."""
    first = [revision for revision in (stable, current) if revision]
    return list(dict.fromkeys([*first, *replicasets]))


async def restart(
    kube: Kube,
    rollout: Object,
    plan: Plan,
    replicasets: Mapping[str, Object],
    *,
    desired: Mapping[str, int],
    current: str,
    now: datetime.datetime,
) -> Restart:
    """Decide and evict; `replicasets` by revision, oldest first; `desired` the decision's replicas."""
    spec, status = rollout["spec"], rollout.get("status") or {}
    restart_at, restarted_at = spec.get("restartAt"), status.get("restartedAt")
    settled = pending(restart_at, restarted_at, now)
    if settled is not None or restart_at is None:
        return settled or Restart()
    namespace = rollout["metadata"]["namespace"]
    owners = {rs["metadata"]["uid"] for rs in replicasets.values()}
    listed = await kube.list(POD, namespace, plan.pod_selector)
    pods = [
        pod_facts(pod)
        for pod in listed
        if any(ref.get("uid") in owners for ref in pod["metadata"].get("ownerReferences") or [])
    ]
    sizes = {revision: rs["spec"].get("replicas", 0) for revision, rs in replicasets.items()}
    decided = plan_restart(
        restart_at=restart_at,
        restarted_at=restarted_at,
        pods=pods,
        priority=priority(status.get("stableRevision"), current, replicasets),
        replicas=plan.replicas,
        total=sum(sizes.values()),
        concurrent=concurrency(plan),
        scaling=any(desired.get(revision, size) != size for revision, size in sizes.items())
        or any(replicas > 0 for revision, replicas in desired.items() if revision not in sizes),
    )
    for pod in decided.evict:
        await evict(kube, namespace, pod)
    if decided.restarted_at != restarted_at:
        log.info("%s/%s: every pod made after %s", namespace, rollout["metadata"]["name"], restart_at)
    return decided


async def evict(kube: Kube, namespace: str, pod: PodFacts) -> None:
    """Evict one pod (only the one observed: its uid as a precondition). A PodDisruptionBudget's
    refusal, or the pod already gone, is left to the next look."""
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod.name, "namespace": namespace},
        "deleteOptions": {"preconditions": {"uid": pod.uid}},
    }
    log.info("%s/%s: restarting (made %s)", namespace, pod.name, pod.created.isoformat())
    try:
        await kube.request("POST", POD.path(namespace, pod.name, "eviction"), body=body)
    except KubeError as error:
        if error.status == TOO_MANY_REQUESTS:
            log.info("%s/%s: eviction refused for now: %s", namespace, pod.name, error.message)
        elif not (error.not_found or error.conflict):
            raise
