"""Argo Rollouts' Rollout fields as Argo reads them: each field parsed into the plan, and its effect."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from delivery.api.rollout import MachineState as State
from delivery.machine import Reason
from delivery.rollout.decide import Memory, Observed, decide
from delivery.rollout.plan import plan_of
from strategies import ReplicaSetState
from strategies.types import Role

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "web:2"}]},
}
ROUTED = {
    "canaryService": "web-canary",
    "stableService": "web-stable",
    "trafficRouting": {"nginx": {"stableIngress": "web"}},
}


def spec(strategy: dict[str, Any], replicas: int = 4) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": strategy,
    }


@pytest.mark.parametrize(
    ("canary", "delays"),
    [
        ({}, (0.0, 0.0)),  # basic: nothing to wait for
        ({"scaleDownDelaySeconds": 60, "abortScaleDownDelaySeconds": 60}, (0.0, 0.0)),  # ignored, as Argo
        (ROUTED, (30.0, 30.0)),  # Argo's default with a router
        ({**ROUTED, "scaleDownDelaySeconds": 5, "abortScaleDownDelaySeconds": 7}, (5.0, 7.0)),
    ],
)
def test_a_canary_waits_to_scale_down_only_with_a_router(
    canary: dict[str, Any], delays: tuple[float, float]
) -> None:
    plan = plan_of(spec({"canary": {"steps": [{"setWeight": 50}], **canary}}))
    assert (plan.scale_down_delay, plan.abort_scale_down_delay) == delays


def test_a_basic_canary_completes_as_soon_as_the_old_pods_are_gone() -> None:
    """The stable Service moved to the new revision this instant: a basic canary scales the old
    stable down at once (with a router it would keep its pods 30 s), then completes."""
    strategy = {"canary": {"steps": [{"setWeight": 50}], "stableService": "web", "scaleDownDelaySeconds": 60}}
    promoting = Memory(
        state=State.PROMOTING, stable="old", revision="new", index=1, traffic_moved=T0, progressed=T0, ready=8
    )

    def observe(*replicasets: ReplicaSetState) -> Observed:
        return Observed(
            plan=plan_of(spec(strategy)),
            revision="new",
            memory=promoting,
            replicasets=replicasets,
            applied_weight=0,
            applied_selectors={Role.STABLE: "new"},
            commands={},
            now=T0 + datetime.timedelta(milliseconds=100),
        )

    scaling = decide(observe(ReplicaSetState("old", 4, 4), ReplicaSetState("new", 4, 4)))
    assert scaling.desired.replicas["old"] == 0
    done = decide(observe(ReplicaSetState("old", 0, 0), ReplicaSetState("new", 4, 4)))
    assert done.transition is not None
    assert done.transition.reason is Reason.COMPLETED
