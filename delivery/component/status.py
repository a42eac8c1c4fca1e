"""A Component's status from what runs: is its workload ready, and what did it render. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from delivery.kube.api import Object
from delivery.report import Condition, merge_conditions

READY = "Ready"
RECONCILED = "Reconciled"


def workload_ready(workload: Object | None, minimum: int | None = None) -> Condition:
    """Ready when every pod of the workload's current spec is available.

    `minimum` is set when an autoscaler sets the replicas (its minReplicas): their number then
    moves with the load, and a scale out must not turn a running service NotReady while its new
    pods start. So an autoscaled workload is ready when at least `minimum` pods (or as many as it
    has, if fewer) are available and every pod it has runs its current template; its message
    carries no count, which would change (and be written) with every scale."""
    if workload is None:
        return Condition(READY, False, "WorkloadMissing", "the workload is not created yet")
    kind = workload["kind"]
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    generation = workload["metadata"].get("generation", 0)
    if kind == "Rollout":
        phase = status.get("phase")
        ready = phase == "Healthy" and status.get("observedGeneration", 0) >= generation
        return Condition(READY, ready, "RolloutHealthy" if ready else "RolloutNotHealthy", f"Rollout {phase}")
    if kind == "DaemonSet":
        wanted, have = status.get("desiredNumberScheduled", 0), status.get("numberAvailable", 0)
        updated = status.get("updatedNumberScheduled", 0)
    else:
        wanted = spec.get("replicas", 1)
        have = status.get("availableReplicas", 0)
        updated = status.get("updatedReplicas", 0)
        if kind == "StatefulSet":
            # A paused release (partition > 0) is not updated everywhere yet, but it is what was asked.
            partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0)
            updated += min(partition, wanted)
    current = not lags(workload)
    # As `kubectl rollout status`: an available old pod beside a new one that cannot start is not
    # ready. Pods of the current template beyond `wanted` (a scale down under way) are no old pods.
    leftover = kind == "Deployment" and status.get("replicas", 0) > status.get("updatedReplicas", 0)
    if minimum is not None and kind != "DaemonSet":
        floor, pods = min(minimum, wanted), status.get("replicas", 0)
        ready = current and have >= floor and updated >= pods and not leftover
        message = f"at least {floor} pods available, every pod updated (autoscaled)"
        if not ready:
            message = f"{have} pods available of at least {floor}, {min(updated, pods)}/{pods} updated" + (
                "" if current else ", the latest spec not yet seen"
            )
        return Condition(READY, ready, "PodsAvailable" if ready else "PodsNotAvailable", message)
    ready = current and have >= wanted and updated >= wanted and not leftover
    message = f"{min(have, wanted)}/{wanted} pods available, {min(updated, wanted)}/{wanted} updated" + (
        "" if current else ", the latest spec not yet seen"
    )
    return Condition(READY, ready, "PodsAvailable" if ready else "PodsNotAvailable", message)


def lags(workload: Object) -> bool:
    """The workload's status is older than its spec: its controller has not acted on it yet."""
    observed = (workload.get("status") or {}).get("observedGeneration", 0)
    return bool(observed < workload["metadata"].get("generation", 0))


def held_ready(
    computed: Condition,
    component: Object,
    workload: Object | None,
    revision: str,
    *,
    template_written: bool,
) -> Condition:
    """`computed`, or the Ready the Component already has when `computed` is only a status that
    lags a scale: a change of the replicas alone (an autoscaler's, or a restore of
    `spec.replicas`) moves the workload's generation, and until its controller has seen it the
    status says nothing of the current spec. No pod template changed, so what was ready still is;
    turning NotReady and back for it would be a pair of Events (and two status writes) per scale.

    The Ready kept must be about this very spec and these inputs (the Component's generation and
    rendered revision), and nothing but replicas may have been written to the workload in this
    reconcile; anything else (a release, a template change) turns NotReady as it always has."""
    if computed.status or workload is None or template_written or not lags(workload):
        return computed
    status = component.get("status") or {}
    before = next((c for c in status.get("conditions") or () if c.get("type") == READY), None)
    same_spec = before is not None and before.get("observedGeneration") == component["metadata"].get(
        "generation"
    )
    if not same_spec or before is None or before.get("status") != "True":
        return computed
    if status.get("renderedRevision") != revision:
        return computed
    return Condition(READY, True, before.get("reason", ""), before.get("message", ""))


def rendered_objects(objects: Sequence[Object]) -> list[dict[str, Any]]:
    return [
        {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"]}
        for obj in objects
    ]


def status_patch(
    component: Object, conditions: Sequence[Condition], at: str, **fields: Any
) -> dict[str, Any] | None:
    """The merge patch that brings the status to `conditions` and `fields`; None when it holds."""
    previous = component.get("status") or {}
    generation = component["metadata"].get("generation", 1)
    merged = merge_conditions(previous.get("conditions", []), list(conditions), generation, at)
    wanted = {"observedGeneration": generation, "conditions": merged, **fields}
    changes = {key: value for key, value in wanted.items() if previous.get(key) != value}
    return changes or None
