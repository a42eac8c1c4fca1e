"""A new spec.replicas in the middle of a release is no new revision and no transition: the step,
its pause and the pause's start stay; only the replica counts follow."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

from delivery.api.rollout import MachineState as State
from delivery.machine import Reason
from delivery.rollout.decide import Memory, Observed, decide
from delivery.rollout.plan import plan_of
from delivery.rollout.revision import template_hash
from strategies import ReplicaSetState
from strategies.types import Role

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "web:2"}]},
}
CANARY = {
    "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}], "scaleDownDelaySeconds": 0}
}
BLUE_GREEN = {
    "blueGreen": {"activeService": "web", "previewService": "web-preview", "autoPromotionEnabled": False}
}


def spec(replicas: int, strategy: dict[str, Any]) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": strategy,
    }


def at(
    memory: Memory,
    replicas: int,
    *replicasets: ReplicaSetState,
    strategy: dict[str, Any] = CANARY,
    seconds: float = 0,
    selectors: dict[Role, str] | None = None,
) -> Observed:
    plan = plan_of(spec(replicas, strategy))
    return Observed(
        plan=plan,
        revision=template_hash(plan.template),
        memory=memory,
        replicasets=replicasets,
        applied_weight=50 if strategy is CANARY else 0,
        applied_selectors=selectors or {},
        commands={},
        now=T0 + datetime.timedelta(seconds=seconds),
    )


NEW = template_hash(TEMPLATE)


def test_the_revision_is_the_template_alone() -> None:
    four, nine = plan_of(spec(4, CANARY)), plan_of(spec(9, CANARY))
    assert template_hash(four.template) == template_hash(nine.template)


def test_a_rescaled_timed_pause_keeps_its_start_and_ends_on_time() -> None:
    paused = Memory(
        state=State.PAUSED, stable="old", revision=NEW, index=1, pause_started=T0, progressed=T0, ready=4
    )
    halves = (ReplicaSetState("old", 2, 2), ReplicaSetState(NEW, 2, 2))
    during = decide(at(paused, 10, *halves, seconds=4))
    assert during.transition is None
    assert (during.memory.state, during.memory.index, during.memory.revision) == (State.PAUSED, 1, NEW)
    assert during.memory.pause_started == T0
    assert during.requeue_after == 6
    assert during.desired.replicas == {"old": 5, NEW: 5}
    assert during.desired.canary_weight == 50
    grown = replace(during.memory, ready=10)
    fives = (ReplicaSetState("old", 5, 5), ReplicaSetState(NEW, 5, 5))
    ended = decide(at(grown, 10, *fives, seconds=10))
    assert [t.reason for t in ended.transitions] == [Reason.STEP_COMPLETED, Reason.PROMOTED]  # the last step
    assert (ended.memory.index, ended.memory.state) == (2, State.PROMOTING)


def test_blue_green_waiting_for_promotion_follows_a_new_total() -> None:
    waiting = Memory(state=State.PAUSED, stable="old", revision=NEW, pause_started=T0, progressed=T0, ready=8)
    pairs = (ReplicaSetState("old", 4, 4), ReplicaSetState(NEW, 4, 4))
    services = {Role.ACTIVE: "old", Role.PREVIEW: NEW}
    decision = decide(at(waiting, 6, *pairs, strategy=BLUE_GREEN, seconds=30, selectors=services))
    assert decision.transition is None
    assert decision.memory.pause_started == T0
    assert decision.desired.replicas == {"old": 6, NEW: 6}
    assert decision.desired.selectors == services
