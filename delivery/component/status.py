"""A Component's status from what runs: is its workload ready, and what did it render. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from delivery.kube.api import Object
from delivery.report import Condition, merge_conditions

READY = "Ready"
RECONCILED = "Reconciled"


def workload_ready(workload: Object | None) -> Condition:
    """Ready when every pod of the workload's current spec is available."""
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
    current = status.get("observedGeneration", 0) >= generation
    # As `kubectl rollout status`: an available old pod beside a new one that cannot start is not ready.
    leftover = kind == "Deployment" and status.get("replicas", 0) > wanted
    ready = current and have >= wanted and updated >= wanted and not leftover
    message = f"{have}/{wanted} pods available, {min(updated, wanted)}/{wanted} updated" + (
        "" if current else ", the latest spec not yet seen"
    )
    return Condition(READY, ready, "PodsAvailable" if ready else "PodsNotAvailable", message)


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
