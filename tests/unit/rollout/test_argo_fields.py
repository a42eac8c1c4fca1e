"""Argo Rollouts' Rollout fields as Argo reads them: each field parsed into the plan, and its effect."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from delivery.api.rollout import MachineState as State
from delivery.api.rollout import ScaleDown
from delivery.machine import Reason
from delivery.rollout.affinity import with_anti_affinity
from delivery.rollout.decide import Memory, Observed, decide
from delivery.rollout.plan import InvalidSpec, plan_of
from delivery.rollout.revision import HASH_LABEL
from delivery.rollout.workload import referenced_replicas
from strategies import ReplicaSetState
from strategies.types import Role

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TEMPLATE: dict[str, Any] = {
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


@pytest.mark.parametrize(
    ("blue_green", "delays"),
    [
        ({}, (30.0, 30.0)),  # Argo's defaults
        ({"abortScaleDownDelaySeconds": 5}, (30.0, 5.0)),
        ({"scaleDownDelaySeconds": 0}, (0.0, 0.0)),  # unset: the scale-down delay's (Argo's: 30)
        ({"scaleDownDelaySeconds": 0, "abortScaleDownDelaySeconds": 30}, (0.0, 30.0)),
    ],
)
def test_a_blue_green_abort_keeps_the_preview_for_abort_scale_down_delay_seconds(
    blue_green: dict[str, Any], delays: tuple[float, float]
) -> None:
    plan = plan_of(spec({"blueGreen": {"activeService": "web", **blue_green}}))
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


@pytest.mark.parametrize(
    ("duration", "expected"), [(30, 30.0), ("30", 30.0), ("30s", 30.0), ("1m30s", 90.0), (0, 0.0)]
)
def test_a_pause_duration_is_seconds_or_a_duration_as_argos_int_or_string(
    duration: int | str, expected: float
) -> None:
    plan = plan_of(spec({"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": duration}}]}}))
    assert plan.steps[1].pause_seconds == expected


@pytest.mark.parametrize("duration", [-1, "30x", "", "s", True])
def test_a_pause_duration_that_is_neither_is_refused(duration: object) -> None:
    with pytest.raises(InvalidSpec, match="duration"):
        plan_of(spec({"canary": {"steps": [{"pause": {"duration": duration}}]}}))


@pytest.mark.parametrize("canary", [{}, {"steps": []}])
def test_a_canary_without_steps_goes_straight_to_the_new_revision(canary: dict[str, Any]) -> None:
    plan = plan_of(spec({"canary": canary}))
    assert plan.steps == ()
    healthy = Memory(state=State.HEALTHY, stable="old", revision="old", progressed=T0, ready=4)

    def observe(memory: Memory, *replicasets: ReplicaSetState) -> Observed:
        return Observed(plan, "new", memory, replicasets, 0, {}, {}, T0)

    updated = decide(observe(healthy, ReplicaSetState("old", 4, 4)))
    promoted = decide(observe(updated.memory, ReplicaSetState("old", 4, 4)))
    assert promoted.transition is not None
    assert promoted.transition.reason is Reason.PROMOTED
    assert promoted.desired.replicas["new"] == 4
    done = decide(observe(promoted.memory, ReplicaSetState("old", 0, 0), ReplicaSetState("new", 4, 4)))
    assert done.transition is not None
    assert done.transition.reason is Reason.COMPLETED


@pytest.mark.parametrize(
    ("budgets", "pace"),
    [
        ({}, None),  # our default: surge first, none unavailable
        ({"maxSurge": 1}, (1, "25%")),  # Argo's 25% for the one unset
        ({"maxUnavailable": "50%"}, ("25%", "50%")),
        ({"maxSurge": "10%", "maxUnavailable": 0}, ("10%", 0)),
    ],
)
def test_a_canarys_budgets_are_read_as_argo_reads_them(
    budgets: dict[str, Any], pace: tuple[int | str, int | str] | None
) -> None:
    assert plan_of(spec({"canary": {"steps": [{"setWeight": 50}], **budgets}})).pace == pace


@pytest.mark.parametrize(
    "budgets", [{"maxSurge": 0, "maxUnavailable": "0%"}, {"maxUnavailable": "150%"}, {"maxSurge": "1"}]
)
def test_budgets_that_cannot_move_pods_are_refused(budgets: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec, match="max"):
        plan_of(spec({"canary": {"steps": [{"setWeight": 50}], **budgets}}))


def test_a_paced_basic_canary_moves_one_pod_at_a_time() -> None:
    plan = plan_of(spec({"canary": {"steps": [{"setWeight": 50}], "maxSurge": 1, "maxUnavailable": 0}}))
    healthy = Memory(state=State.HEALTHY, stable="old", revision="old", progressed=T0, ready=4)
    updated = decide(Observed(plan, "new", healthy, (ReplicaSetState("old", 4, 4),), 0, {}, {}, T0))
    assert updated.desired.replicas == {"old": 4, "new": 1}


@pytest.mark.parametrize(
    ("abort", "reason", "state"),
    [(False, Reason.DEADLINE_EXCEEDED, State.DEGRADED), (True, Reason.ABORTED, State.ABORTING)],
)
def test_progress_deadline_abort_aborts_instead_of_only_degrading(
    abort: bool, reason: Reason, state: State
) -> None:
    raw = {
        **spec({"canary": {"steps": [{"setWeight": 50}]}}),
        "progressDeadlineSeconds": 60,
        "progressDeadlineAbort": abort,
    }
    stuck = Memory(state=State.PROGRESSING, stable="old", revision="new", progressed=T0, ready=4)
    replicasets = (ReplicaSetState("old", 4, 4), ReplicaSetState("new", 2, 0))
    late = T0 + datetime.timedelta(seconds=61)
    decision = decide(Observed(plan_of(raw), "new", stuck, replicasets, 0, {}, {}, late))
    assert decision.transition is not None
    assert (decision.transition.reason, decision.memory.state) == (reason, state)
    assert decision.memory.aborted is abort


def test_min_ready_seconds_is_read_for_the_replicasets() -> None:
    assert plan_of({**spec({"canary": {}}), "minReadySeconds": 30}).min_ready_seconds == 30
    assert plan_of(spec({"canary": {}})).min_ready_seconds is None


@pytest.mark.parametrize(("min_pods", "canary"), [(None, 1), (3, 3), (20, 10)])
def test_min_pods_per_replica_set_sizes_a_routed_canary(min_pods: int | None, canary: int) -> None:
    strategy: dict[str, Any] = {**ROUTED, "steps": [{"setWeight": 10}, {"pause": {}}]}
    if min_pods is not None:
        strategy["minPodsPerReplicaSet"] = min_pods
    plan = plan_of(spec({"canary": strategy}, replicas=10))
    memory = Memory(state=State.PROGRESSING, stable="old", revision="new", progressed=T0, ready=10)
    observed = Observed(plan, "new", memory, (ReplicaSetState("old", 10, 10),), 0, {}, {}, T0)
    assert decide(observed).desired.replicas == {"old": 10, "new": canary}


def test_min_pods_per_replica_set_leaves_an_empty_canary_empty() -> None:
    plan = plan_of(
        spec({"canary": {**ROUTED, "steps": [{"setWeight": 0}, {"pause": {}}], "minPodsPerReplicaSet": 2}})
    )
    memory = Memory(state=State.PROGRESSING, stable="old", revision="new", progressed=T0, ready=4)
    observed = Observed(plan, "new", memory, (ReplicaSetState("old", 4, 4),), 0, {}, {}, T0)
    assert decide(observed).desired.replicas == {"old": 4, "new": 0}


@pytest.mark.parametrize(
    ("strategy", "delay"),
    [
        ({"canary": {**ROUTED, "scaleDownDelayRevisionLimit": 0}}, 0.0),
        ({"canary": {**ROUTED, "scaleDownDelayRevisionLimit": 2}}, 30.0),
        ({"blueGreen": {"activeService": "web", "scaleDownDelayRevisionLimit": 0}}, 0.0),
        ({"blueGreen": {"activeService": "web", "scaleDownDelayRevisionLimit": 1}}, 30.0),
    ],
)
def test_a_scale_down_delay_revision_limit_of_zero_skips_the_delay(
    strategy: dict[str, Any], delay: float
) -> None:
    assert plan_of(spec(strategy)).scale_down_delay == delay


@pytest.mark.parametrize(
    ("mode", "healthy", "ready", "replicas"),
    [
        (ScaleDown.NEVER, True, 4, 4),  # left as it is
        (ScaleDown.ON_SUCCESS, False, 3, 4),  # only once Healthy
        (ScaleDown.ON_SUCCESS, True, 4, 0),
        (ScaleDown.PROGRESSIVELY, False, 0, 4),
        (ScaleDown.PROGRESSIVELY, False, 3, 1),  # one Deployment pod less per ready Rollout pod
        (ScaleDown.PROGRESSIVELY, True, 4, 0),
    ],
)
def test_a_referenced_deployment_scales_down_as_its_scale_down_says(
    mode: ScaleDown, healthy: bool, ready: int, replicas: int
) -> None:
    assert referenced_replicas(mode, healthy=healthy, current=4, replicas=4, ready=ready) == replicas


def test_progressively_never_scales_the_deployment_back_up() -> None:
    assert referenced_replicas(ScaleDown.PROGRESSIVELY, healthy=False, current=1, replicas=4, ready=0) == 1


@pytest.mark.parametrize(
    ("written", "mode"),
    [(None, ScaleDown.ON_SUCCESS), ("never", ScaleDown.NEVER), ("progressively", ScaleDown.PROGRESSIVELY)],
)
def test_workload_ref_scale_down_is_read_into_the_plan(written: str | None, mode: ScaleDown) -> None:
    reference: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    if written is not None:
        reference["scaleDown"] = written
    raw = {"replicas": 4, "workloadRef": reference, "strategy": {"canary": {}}}
    deployment = {"spec": {"template": TEMPLATE, "selector": {"matchLabels": {"app": "web"}}}}
    assert plan_of(raw, deployment).scale_down is mode


def test_anti_affinity_keeps_the_new_pods_off_the_stable_pods_nodes() -> None:
    required: dict[str, Any] = {"requiredDuringSchedulingIgnoredDuringExecution": {}}
    plan = plan_of(spec({"canary": {"steps": [{"setWeight": 50}], "antiAffinity": required}}))
    injected = with_anti_affinity(TEMPLATE, plan.anti_affinity, stable="old", revision="new", namespace="ns")
    term = {
        "labelSelector": {"matchExpressions": [{"key": HASH_LABEL, "operator": "In", "values": ["old"]}]},
        "namespaces": ["ns"],
        "topologyKey": "kubernetes.io/hostname",
    }
    assert injected["spec"]["affinity"] == {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    }
    assert (
        "affinity" not in TEMPLATE["spec"]
    )  # the Rollout's template, which names the revision, is untouched


def test_a_preferred_anti_affinity_is_added_to_the_templates_own() -> None:
    own = {"weight": 1, "podAffinityTerm": {"topologyKey": "zone"}}
    template = {
        **TEMPLATE,
        "spec": {
            **TEMPLATE["spec"],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [own]}},
        },
    }
    preferred = {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 80}}
    plan = plan_of(spec({"blueGreen": {"activeService": "web", "antiAffinity": preferred}}))
    injected = with_anti_affinity(template, plan.anti_affinity, stable="old", revision="new", namespace="ns")
    terms = injected["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert [term["weight"] for term in terms] == [1, 80]
    assert terms[1]["podAffinityTerm"]["labelSelector"]["matchExpressions"][0]["values"] == ["old"]


def test_no_anti_affinity_for_the_first_revision() -> None:
    required: dict[str, Any] = {"requiredDuringSchedulingIgnoredDuringExecution": {}}
    plan = plan_of(spec({"canary": {"antiAffinity": required}}))
    assert (
        with_anti_affinity(TEMPLATE, plan.anti_affinity, stable="new", revision="new", namespace="ns")
        is TEMPLATE
    )


def test_anti_affinity_is_one_of_the_two() -> None:
    both = {
        "requiredDuringSchedulingIgnoredDuringExecution": {},
        "preferredDuringSchedulingIgnoredDuringExecution": {"weight": 1},
    }
    with pytest.raises(InvalidSpec, match="exactly one"):
        plan_of(spec({"canary": {"antiAffinity": both}}))


def test_dynamic_stable_scale_is_read_and_needs_a_router() -> None:
    assert plan_of(spec({"canary": {**ROUTED, "dynamicStableScale": True}})).dynamic_stable
    assert not plan_of(spec({"canary": {"dynamicStableScale": False}})).dynamic_stable
    with pytest.raises(InvalidSpec, match="dynamicStableScale requires trafficRouting"):
        plan_of(spec({"canary": {"dynamicStableScale": True}}))
