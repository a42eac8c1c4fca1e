"""Release gates and hooks as pure decisions: where a release is held, what each answer means, what
is asked when, and what is told of a transition (delivery/rollout/gates.py through decide)."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

import pytest

from delivery.api.rollout import Hook, MachineState, OpenedBy, RolloutStatus
from delivery.api.rollout import MachineState as State
from delivery.machine import Reason
from delivery.rollout import gates
from delivery.rollout.decide import OPEN_GATE, PROMOTE, Decision, Memory, Observed, decide, release_of
from delivery.rollout.plan import InvalidSpec, plan_of
from strategies import ReplicaSetState

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "web:2"}]},
}
STEPS = [{"setWeight": 25}, {"pause": {"duration": "1s"}}, {"setWeight": 75}]
HEALTHY = Memory(state=State.HEALTHY, stable="old", revision="old", progressed=T0, ready=4)
RELEASING = replace(HEALTHY, state=State.PROGRESSING, revision="new")


def hook(name: str, kind: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "url": f"http://hooks.example/{name}", **more}


def spec(hooks: list[dict[str, Any]], strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": strategy or {"canary": {"steps": STEPS, "scaleDownDelaySeconds": 0}},
        "hooks": hooks,
    }


def observed(
    hooks: list[dict[str, Any]],
    memory: Memory,
    *replicasets: ReplicaSetState,
    record: gates.Record | None = None,
    answers: tuple[gates.Answer, ...] = (),
    commands: dict[str, str] | None = None,
    applied_weight: int = 0,
    strategy: dict[str, Any] | None = None,
) -> Observed:
    return Observed(
        plan=plan_of(spec(hooks, strategy)),
        revision="new",
        memory=memory,
        replicasets=replicasets or (ReplicaSetState("old", 4, 4),),
        applied_weight=applied_weight,
        applied_selectors={},
        commands=commands or {},
        now=T0,
        gates=record or gates.Record("new"),
        answers=answers,
    )


def yes(name: str, step: int | None = None) -> gates.Answer:
    return gates.Answer(gates.Mark(name, step), True, "HTTP 200")


def no(name: str, step: int | None = None, detail: str = "HTTP 403: not yet") -> gates.Answer:
    return gates.Answer(gates.Mark(name, step), False, detail)


def again(o: Observed, decision: Decision, **changes: Any) -> Observed:
    """The next reconcile's observation: the decision's memory and gates, as the status keeps them."""
    assert decision.gates is not None
    fresh: dict[str, Any] = {
        "memory": decision.memory,
        "gates": decision.gates,
        "answers": (),
        "commands": {},
    }
    return replace(o, **(fresh | changes))


def test_a_confirm_rollout_gate_holds_the_release_before_any_pod_until_it_says_yes() -> None:
    o = observed([hook("approve", "confirm-rollout")], HEALTHY)
    started = decide(o)
    assert started.transition is not None
    assert started.transition.reason is Reason.ROLLOUT_UPDATED
    assert started.desired.replicas.get("new", 0) == 0  # no canary pod while held
    assert started.gated == (True, gates.WAITING, "approve: not answered yet")

    refused = decide(again(o, started, answers=(no("approve"),)))
    assert refused.transition is None
    assert refused.desired.replicas.get("new", 0) == 0
    assert refused.desired.canary_weight == 0
    assert refused.gated == (True, "ConfirmRolloutRefused", "approve: HTTP 403: not yet")
    assert [note.reason for _, note in refused.events] == [gates.GATE_HELD]
    # Asked again, no again: the same hold, no second Event (one per change, not per poll).
    still = decide(again(o, refused, answers=(no("approve", detail="HTTP 403: still not"),)))
    assert still.events == ()
    assert still.gated is not None
    assert still.gated[1] == "ConfirmRolloutRefused"

    opened = decide(again(o, still, answers=(yes("approve"),)))
    assert opened.gated == (False, gates.OPEN, "")
    assert opened.gates is not None
    assert opened.gates.started
    assert opened.gates.opened == (gates.Opened(gates.Mark("approve"), OpenedBy.HOOK),)
    assert [note.reason for _, note in opened.events] == [gates.GATE_OPENED]
    assert opened.desired.replicas["new"] == 1  # step 0 (25%) goes ahead


def test_pre_rollout_runs_after_the_confirm_gates_and_its_no_aborts() -> None:
    hooks = [hook("approve", "confirm-rollout"), hook("smoke", "pre-rollout")]
    o = observed(hooks, RELEASING)
    first = decide(o)
    assert first.gates is not None
    assert [w.mark.name for w in first.gates.waiting] == ["approve"]
    confirmed = decide(again(o, first, answers=(yes("approve"),)))
    assert confirmed.gates is not None
    assert [w.mark.name for w in confirmed.gates.waiting] == ["smoke"]
    assert confirmed.desired.replicas.get("new", 0) == 0  # not started until pre-rollout passed
    aborted = decide(again(o, confirmed, answers=(no("smoke", detail="HTTP 500 (3 attempts)"),)))
    assert aborted.transition is not None
    assert aborted.transition.reason is Reason.ABORTED
    assert aborted.transition.message == "pre-rollout hook smoke said no: HTTP 500 (3 attempts)"
    assert aborted.memory.state is State.ABORTING


def test_pre_rollout_yes_starts_the_release_and_is_not_asked_again() -> None:
    o = observed([hook("smoke", "pre-rollout")], RELEASING)
    held = decide(o)
    passed = decide(again(o, held, answers=(yes("smoke"),)))
    assert passed.gates is not None
    assert passed.gates.started
    assert passed.gates.waiting == ()
    assert passed.desired.replicas["new"] == 1
    plan = o.plan
    assert gates.due(plan, passed.gates, release_of(passed.memory, "new"), {}, T0) == ()


def test_confirm_traffic_increase_keeps_the_previous_weight_until_yes() -> None:
    o = observed([hook("more", "confirm-traffic-increase")], RELEASING)
    at_zero = decide(o)
    assert at_zero.gates is not None
    assert at_zero.gates.waiting[0].mark == gates.Mark("more", 0)
    assert at_zero.desired.replicas.get("new", 0) == 0
    assert at_zero.transition is None
    step0 = decide(again(o, at_zero, answers=(yes("more", 0),), replicasets=(ReplicaSetState("old", 4, 4),)))
    assert step0.desired.replicas["new"] == 1
    # At step 2 (75%), held at step 1's 25%: the canary keeps its size and weight.
    at_two = replace(RELEASING, index=2)
    pods = (ReplicaSetState("old", 3, 3), ReplicaSetState("new", 1, 1))
    assert step0.gates is not None
    held = decide(again(o, step0, memory=at_two, replicasets=pods, applied_weight=25))
    assert held.transition is None
    assert held.desired.replicas == {"old": 3, "new": 1}
    assert held.gates is not None
    assert held.gates.waiting[0].mark == gates.Mark("more", 2)
    go = decide(again(o, held, answers=(yes("more", 2),)))
    assert go.desired.replicas["new"] == 3


def test_a_pause_step_does_not_ask_confirm_traffic_increase() -> None:
    o = observed([hook("more", "confirm-traffic-increase")], replace(RELEASING, index=1))
    record = gates.Record("new", started=True, opened=(gates.Opened(gates.Mark("more", 0), OpenedBy.HOOK),))
    decision = decide(replace(o, gates=record))
    assert decision.gated == (False, gates.OPEN, "")


def test_confirm_promotion_holds_a_canary_at_its_last_step_then_promotes() -> None:
    o = observed([hook("ship", "confirm-promotion")], replace(RELEASING, index=3))
    pods = (ReplicaSetState("old", 1, 1), ReplicaSetState("new", 3, 3))
    held = decide(replace(o, replicasets=pods, applied_weight=75, gates=gates.Record("new", started=True)))
    assert held.transition is None
    assert held.memory.state is State.PROGRESSING
    assert held.desired.replicas == {"old": 1, "new": 3}  # as at the last step, not promoting
    assert held.gated == (True, gates.WAITING, "ship: not answered yet")
    promoted = decide(again(o, held, answers=(yes("ship"),)))
    assert promoted.transition is not None
    assert promoted.transition.reason is Reason.PROMOTED


def test_confirm_promotion_holds_a_blue_green_auto_promotion() -> None:
    strategy = {"blueGreen": {"activeService": "web", "scaleDownDelaySeconds": 0}}
    pods = (ReplicaSetState("old", 4, 4), ReplicaSetState("new", 4, 4))
    o = observed([hook("ship", "confirm-promotion")], RELEASING, *pods, strategy=strategy)
    held = decide(o)
    assert held.transition is None
    assert held.gated is not None
    assert held.gated[0]
    assert held.gates is not None
    assert held.gates.started
    promoted = decide(again(o, held, answers=(yes("ship"),)))
    assert promoted.transition is not None
    assert promoted.transition.reason is Reason.PROMOTED


def test_a_person_promoting_fully_is_an_approval_the_gate_does_not_hold() -> None:
    o = observed([hook("ship", "confirm-promotion")], replace(RELEASING, index=3))
    decision = decide(replace(o, commands={PROMOTE: "full"}, gates=gates.Record("new", started=True)))
    assert decision.transition is not None
    assert decision.transition.reason is Reason.PROMOTED


def test_a_person_opens_the_gate_the_release_is_held_at_and_the_annotation_is_consumed() -> None:
    o = observed([hook("approve", "confirm-rollout")], HEALTHY)
    held = decide(o)
    opened = decide(again(o, held, commands={OPEN_GATE: "approve"}))
    assert OPEN_GATE in opened.consumed
    assert opened.gates is not None
    assert opened.gates.opened == (gates.Opened(gates.Mark("approve"), OpenedBy.PERSON),)
    assert opened.desired.replicas["new"] == 1
    assert [note.message for _, note in opened.events] == ["approve opened by a person"]
    # A name the release is not held at is refused with a note, and consumed too.
    refused = decide(again(o, opened, commands={OPEN_GATE: "nope"}))
    assert OPEN_GATE in refused.consumed
    assert refused.note == "open-gate nope ignored: the release is not held at a gate of that name"


def test_rollout_no_and_rollback_yes_abort_a_running_release() -> None:
    hooks = [hook("load", "rollout"), hook("stop", "rollback")]
    running = observed(hooks, RELEASING, record=gates.Record("new", started=True))
    for answer, message in (
        (no("load", detail="HTTP 500"), "rollout hook load said no: HTTP 500"),
        (yes("stop"), "rollback hook stop asked for a rollback: HTTP 200"),
    ):
        decision = decide(replace(running, answers=(answer,)))
        assert decision.transition is not None
        assert decision.transition.message == message
        assert decision.memory.state is State.ABORTING
    fine = decide(replace(running, answers=(yes("load"), no("stop", detail="HTTP 404"))))
    assert fine.transition is None or fine.transition.reason is not Reason.ABORTED


def test_rollout_and_rollback_hooks_are_asked_on_their_interval_while_the_release_runs() -> None:
    hooks = [hook("load", "rollout", interval="30s"), hook("stop", "rollback")]
    plan = plan_of(spec(hooks))
    record = gates.Record("new", started=True)
    release = release_of(RELEASING, "new")
    assert [mark.name for _, mark in gates.due(plan, record, release, {}, T0)] == ["load", "stop"]
    asked = {gates.Mark("load"): T0, gates.Mark("stop"): T0}
    later = T0 + datetime.timedelta(seconds=10)
    assert [mark.name for _, mark in gates.due(plan, record, release, asked, later)] == ["stop"]
    assert gates.next_ask(plan, record, release, asked, later) == 0.0
    asked[gates.Mark("stop")] = later
    assert gates.next_ask(plan, record, release, asked, later) == 10.0  # stop's 10 s default
    # Not before the release started, nor after promotion, nor for another revision.
    assert gates.due(plan, gates.Record("new"), release, {}, T0) == ()
    promoting = release_of(replace(RELEASING, state=MachineState.PROMOTING), "new")
    assert gates.due(plan, record, promoting, {}, T0) == ()
    assert gates.due(plan, gates.Record("other", started=True), release, {}, T0) == ()


def test_a_first_revision_and_a_finished_release_are_never_held() -> None:
    first = decide(observed([hook("approve", "confirm-rollout")], Memory()))
    assert first.gated == (False, gates.OPEN, "")
    assert first.desired.replicas["new"] == 4


def test_event_hooks_are_told_every_transition_and_post_rollout_the_end_of_a_release() -> None:
    hooks = tuple(
        Hook.model_validate(raw)
        for raw in (hook("all", "event"), hook("after", "post-rollout"), hook("gate", "confirm-rollout"))
    )
    release = {"stableRevision": "old", "canaryRevision": "new"}
    first = {"stableRevision": "new", "canaryRevision": "new"}
    assert [h.name for h in gates.told(hooks, Reason.PAUSED, release)] == ["all"]
    assert [h.name for h in gates.told(hooks, Reason.COMPLETED, release)] == ["all", "after"]
    assert [h.name for h in gates.told(hooks, Reason.ROLLED_BACK, release)] == ["all", "after"]
    assert [h.name for h in gates.told(hooks, Reason.COMPLETED, first)] == ["all"]


def test_the_record_reads_back_from_the_status_the_schema_accepts() -> None:
    record = gates.Record(
        "new",
        started=True,
        opened=(
            gates.Opened(gates.Mark("a"), OpenedBy.HOOK),
            gates.Opened(gates.Mark("b", 2), OpenedBy.PERSON),
        ),
        waiting=(gates.Waiting(gates.Mark("c", 4), "HTTP 403"), gates.Waiting(gates.Mark("d"))),
    )
    status = {"gates": record.to_status()}
    RolloutStatus.model_validate(status)
    assert gates.Record.from_status(status) == record
    assert gates.Record.from_status({}).for_revision("new") == gates.Record("new")


def test_a_new_revision_starts_its_gates_over() -> None:
    o = observed([hook("approve", "confirm-rollout")], RELEASING)
    old = gates.Record("older", started=True, opened=(gates.Opened(gates.Mark("approve"), OpenedBy.HOOK),))
    decision = decide(replace(o, gates=old, answers=(yes("approve"),)))
    assert decision.gates is not None
    assert decision.gates.revision == "new"
    assert decision.gates.opened == ()
    assert not decision.gates.started


def test_hooks_refused_with_a_rolling_update_and_out_of_range_durations() -> None:
    from delivery.api.rollout import RolloutSpec  # noqa: PLC0415 - only here

    rolling = spec([hook("a", "event")], {"rolling": {}})
    with pytest.raises(ValueError, match="hooks need a canary or blueGreen strategy"):
        RolloutSpec.model_validate(rolling)
    with pytest.raises(InvalidSpec, match="timeout 2m"):
        plan_of(spec([hook("a", "rollout", timeout="2m")]))
    with pytest.raises(InvalidSpec, match="interval 500ms"):
        plan_of(spec([hook("a", "rollout", interval="500ms")]))


def _status(decision: Decision, previous: dict[str, Any], at: str) -> dict[str, Any]:
    from delivery.rollout.status import status_of  # noqa: PLC0415 - only here

    pods = (ReplicaSetState("old", 4, 4),)
    return status_of(
        previous, decision, generation=1, replicasets=pods, replicas=4, selector="app=web", now=at
    )


def test_the_gated_condition_holds_its_time_while_held_and_goes_with_the_hooks() -> None:
    o = observed([hook("approve", "confirm-rollout")], HEALTHY)
    held = decide(o)
    first = _status(held, {}, "2026-01-01T00:00:00Z")
    gated = next(c for c in first["conditions"] if c["type"] == "Gated")
    assert (gated["status"], gated["reason"]) == ("True", gates.WAITING)
    assert first["gates"] == {
        "revision": "new",
        "started": False,
        "opened": [],
        "waiting": [{"name": "approve"}],
    }
    again_held = decide(again(o, held))
    later = _status(again_held, first, "2026-01-01T00:01:00Z")
    assert later == first  # nothing new: the same status, so no write
    without = decide(replace(again(o, held), plan=plan_of({**spec([]), "hooks": None})))
    dropped = _status(without, first, "2026-01-01T00:02:00Z")
    assert "gates" not in dropped
    assert all(c["type"] != "Gated" for c in dropped["conditions"])
