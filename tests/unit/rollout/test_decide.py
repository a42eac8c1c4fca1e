"""The Rollout's decisions as pure functions of what is observed: one transition at a time, or a
step's end and the next step's beginning together."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

from delivery.api.rollout import MachineState as State
from delivery.machine import Reason
from delivery.rollout.decide import ABORT, PROMOTE, Memory, Observed, decide
from delivery.rollout.plan import plan_of
from strategies import ReplicaSetState

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "web:2"}]},
}


def spec(steps: list[dict[str, Any]], deadline: int = 600) -> dict[str, Any]:
    return {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "progressDeadlineSeconds": deadline,
        "strategy": {"canary": {"steps": steps, "scaleDownDelaySeconds": 0}},
    }


def observed(
    memory: Memory,
    *replicasets: ReplicaSetState,
    steps: list[dict[str, Any]] | None = None,
    commands: dict[str, str] | None = None,
    now: datetime.datetime = T0,
    deadline: int = 600,
) -> Observed:
    return Observed(
        plan=plan_of(spec(steps if steps is not None else [{"setWeight": 50}, {"pause": {}}], deadline)),
        revision="new",
        memory=memory,
        replicasets=replicasets,
        applied_weight=0,
        applied_selectors={},
        commands=commands or {},
        now=now,
    )


HEALTHY = Memory(state=State.HEALTHY, stable="old", revision="old", progressed=T0, ready=4)


def test_a_new_template_starts_a_canary_at_step_zero() -> None:
    decision = decide(observed(HEALTHY, ReplicaSetState("old", 4, 4)))
    assert decision.transition is not None
    assert decision.transition.reason is Reason.ROLLOUT_UPDATED
    assert (decision.memory.state, decision.memory.revision, decision.memory.index) == (
        State.PROGRESSING,
        "new",
        0,
    )
    assert decision.desired.replicas["new"] == 2  # basic canary: pods are the weight, surge first


def test_the_first_revision_has_no_steps() -> None:
    decision = decide(
        observed(
            Memory(),
        )
    )
    assert decision.memory.stable == decision.memory.revision == "new"
    assert decision.desired.replicas == {"new": 4}


def test_a_step_completes_when_ready_and_the_next_steps_pause_begins_with_it() -> None:
    progressing = replace(HEALTHY, state=State.PROGRESSING, revision="new")
    waiting = decide(observed(progressing, ReplicaSetState("old", 4, 4), ReplicaSetState("new", 2, 0)))
    assert waiting.transition is None
    ready_pods = observed(progressing, ReplicaSetState("old", 2, 2), ReplicaSetState("new", 2, 2))
    assert decide(ready_pods).desired.canary_weight == 50  # reported first, then the step completes
    ready = decide(replace(ready_pods, applied_weight=50))
    assert [t.reason for t in ready.transitions] == [Reason.STEP_COMPLETED, Reason.PAUSED]
    assert [t.dest for t in ready.transitions] == [State.PROGRESSING, State.PAUSED]
    assert (ready.memory.index, ready.memory.state, ready.memory.pause_started) == (1, State.PAUSED, T0)
    assert ready.memory.reason == Reason.PAUSED.value


def test_a_step_that_waits_on_the_world_is_not_begun_with_the_end_of_the_last() -> None:
    """Two weights in a row: the second step's end needs its pods and weight observed, never assumed."""
    steps: list[dict[str, Any]] = [{"setWeight": 25}, {"setWeight": 50}, {"pause": {}}]
    progressing = replace(HEALTHY, state=State.PROGRESSING, revision="new")
    first = observed(progressing, ReplicaSetState("old", 3, 3), ReplicaSetState("new", 1, 1), steps=steps)
    done = decide(replace(first, applied_weight=25))
    assert [t.reason for t in done.transitions] == [Reason.STEP_COMPLETED]
    assert (done.memory.index, done.memory.state) == (1, State.PROGRESSING)
    assert (done.desired.replicas["new"], done.desired.done) == (2, False)  # acted on, not taken as done


def test_no_progress_for_the_deadline_marks_the_rollout_degraded() -> None:
    stuck = replace(HEALTHY, state=State.PROGRESSING, revision="new", ready=4)
    rs = (ReplicaSetState("old", 4, 4), ReplicaSetState("new", 2, 0))
    early = decide(observed(stuck, *rs, now=T0 + datetime.timedelta(seconds=30), deadline=60))
    assert early.transition is None
    assert early.requeue_after == 30  # looks again when the deadline would pass
    late = decide(observed(stuck, *rs, now=T0 + datetime.timedelta(seconds=61), deadline=60))
    assert late.transition is not None
    assert late.transition.reason is Reason.DEADLINE_EXCEEDED
    assert late.memory.state is State.DEGRADED


def test_a_refused_command_is_consumed_and_explained() -> None:
    aborted = replace(HEALTHY, state=State.ABORTED, revision="new", aborted=True)
    decision = decide(observed(aborted, ReplicaSetState("old", 4, 4), commands={PROMOTE: "step"}))
    assert decision.transition is None
    assert decision.consumed == (PROMOTE,)
    assert decision.note == "promote ignored: the rollout is aborted"


def test_abort_sends_traffic_back_before_the_canary_loses_pods() -> None:
    paused = replace(HEALTHY, state=State.PAUSED, revision="new", index=1)
    decision = decide(
        observed(paused, ReplicaSetState("old", 2, 2), ReplicaSetState("new", 2, 2), commands={ABORT: "true"})
    )
    assert decision.transition is not None
    assert decision.transition.reason is Reason.ABORTED
    assert decision.memory.aborted
    assert decision.desired.replicas["new"] == 2  # keeps its pods until the stable is back at full size
    assert decision.desired.replicas["old"] == 4


def test_going_back_to_the_stable_template_skips_the_steps() -> None:
    in_flight = replace(HEALTHY, state=State.PAUSED, revision="newer", index=1)
    decision = decide(replace(observed(in_flight, ReplicaSetState("old", 2, 2)), revision="old"))
    assert decision.transition is not None
    assert decision.transition.message == "back to the stable revision old: steps skipped"
    assert decision.desired.replicas["old"] == 4


def test_a_timed_pause_asks_to_be_woken_when_it_ends() -> None:
    pausing = replace(HEALTHY, state=State.PAUSED, revision="new", index=1, pause_started=T0)
    rs = (ReplicaSetState("old", 2, 2), ReplicaSetState("new", 2, 2))
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": "10s"}}]
    during = decide(observed(pausing, *rs, steps=steps, now=T0 + datetime.timedelta(seconds=4)))
    assert during.transition is None
    assert during.requeue_after == 6
    after = decide(observed(pausing, *rs, steps=steps, now=T0 + datetime.timedelta(seconds=10)))
    assert [t.reason for t in after.transitions] == [Reason.STEP_COMPLETED, Reason.PROMOTED]  # the last step
    assert (after.memory.index, after.memory.state, after.memory.pause_started) == (2, State.PROMOTING, None)
