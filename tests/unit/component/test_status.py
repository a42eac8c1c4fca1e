"""A Component's status: Ready from its workload, and no status write when nothing changed."""

from __future__ import annotations

from typing import Any

from delivery.component.status import READY, RECONCILED, status_patch, workload_ready
from delivery.report import Condition


def workload(kind: str, spec: dict[str, Any], status: dict[str, Any], generation: int = 2) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "w", "generation": generation}, "spec": spec, "status": status}


def test_a_deployment_is_ready_when_every_pod_of_its_latest_spec_is_available() -> None:
    ready = workload(
        "Deployment", {"replicas": 2}, {"observedGeneration": 2, "availableReplicas": 2, "updatedReplicas": 2}
    )
    assert workload_ready(ready).status
    assert workload_ready(ready).message == "2/2 pods available, 2/2 updated"
    stale = workload(
        "Deployment", {"replicas": 2}, {"observedGeneration": 1, "availableReplicas": 2, "updatedReplicas": 2}
    )
    assert not workload_ready(stale).status
    rolling = workload(
        "Deployment", {"replicas": 2}, {"observedGeneration": 2, "availableReplicas": 2, "updatedReplicas": 1}
    )
    assert not workload_ready(rolling).status
    assert workload_ready(rolling).message == "2/2 pods available, 1/2 updated"
    stuck = {"observedGeneration": 2, "replicas": 3, "availableReplicas": 2, "updatedReplicas": 2}
    assert not workload_ready(
        workload("Deployment", {"replicas": 2}, stuck)
    ).status  # an old pod still serves
    assert not workload_ready(None).status


def test_a_rollout_is_ready_when_healthy_and_a_daemonset_when_scheduled_everywhere() -> None:
    assert workload_ready(workload("Rollout", {}, {"phase": "Healthy", "observedGeneration": 2})).status
    assert not workload_ready(workload("Rollout", {}, {"phase": "Paused", "observedGeneration": 2})).status
    daemons = {
        "observedGeneration": 2,
        "desiredNumberScheduled": 3,
        "numberAvailable": 3,
        "updatedNumberScheduled": 3,
    }
    assert workload_ready(workload("DaemonSet", {}, daemons)).status


def test_a_statefulset_held_at_a_partition_is_ready_with_what_was_asked() -> None:
    spec = {"replicas": 3, "updateStrategy": {"rollingUpdate": {"partition": 1}}}
    held = workload(
        "StatefulSet", spec, {"observedGeneration": 2, "availableReplicas": 3, "updatedReplicas": 2}
    )
    assert workload_ready(held).status


def test_the_status_is_written_only_when_it_changes() -> None:
    component: dict[str, Any] = {"metadata": {"generation": 3}, "status": {}}
    conditions = [
        Condition(RECONCILED, True, "Applied", "rendered Deployment w"),
        Condition(READY, True, "PodsAvailable"),
    ]
    patch = status_patch(component, conditions, "2026-11-25T10:00:00Z", objects=[{"kind": "Deployment"}])
    assert patch is not None
    assert patch["observedGeneration"] == 3
    assert {c["type"]: c["observedGeneration"] for c in patch["conditions"]} == {READY: 3, RECONCILED: 3}
    component["status"] = patch
    assert (
        status_patch(component, conditions, "2026-11-25T10:05:00Z", objects=[{"kind": "Deployment"}]) is None
    )
