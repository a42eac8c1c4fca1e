"""Which status changes may wait (counts alone) and which are written at once (every other)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from delivery.rollout.decide import Decision
from delivery.rollout.plan import plan_of
from delivery.rollout.status import COUNTS, CountsHold, counts_only
from tests.unit.rollout.test_idle import SECOND, STEPS, T0, TICKS, World, release, spec

WRITTEN: dict[str, Any] = {
    "phase": "Progressing",
    "state": "Progressing",
    "currentStepIndex": 0,
    "transitionCount": 3,
    "replicas": 3,
    "readyReplicas": 2,
    "availableReplicas": 2,
    "updatedReplicas": 0,
    "hpaReplicas": 2,
    "progressTime": "2026-12-01T20:00:00Z",
    "conditions": [{"type": "Healthy", "status": "False"}],
}


def test_pods_becoming_ready_change_the_counts_alone() -> None:
    ready = {
        **WRITTEN,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "updatedReplicas": 1,
        "progressTime": "2026-12-01T20:00:01Z",
    }
    assert counts_only(WRITTEN, ready)


@pytest.mark.parametrize(
    "change",
    [
        {"transitionCount": 4, "readyReplicas": 3},  # a transition with the counts
        {"conditions": [{"type": "Healthy", "status": "True"}], "readyReplicas": 3},
        {"currentStepIndex": 1},
        {"analysisHistory": [{"name": "a"}]},  # a field that was not there before
    ],
)
def test_anything_but_the_counts_is_a_fact_written_at_once(change: dict[str, Any]) -> None:
    assert not counts_only(WRITTEN, {**WRITTEN, **change})


def test_a_field_gone_is_a_change_of_its_own() -> None:
    assert not counts_only(WRITTEN, {key: value for key, value in WRITTEN.items() if key != "phase"})


def test_no_change_is_not_a_count_change() -> None:
    assert not counts_only(WRITTEN, dict(WRITTEN))


def test_every_count_is_a_field_the_status_is_written_with() -> None:
    """A count misspelt would never be coalesced: each is a key of a released Rollout's status."""
    world = World(plan_of(spec({"canary": {"steps": STEPS}})), services={})
    release(world, "new", T0, SECOND, pace=1)
    assert world.status.keys() >= COUNTS


def test_in_a_release_the_pods_alone_change_the_counts_alone() -> None:
    """Between the transitions of a simulated release, what the pods becoming ready change may wait;
    a reconcile taking a transition, or moving traffic, never does."""
    world = World(plan_of(spec({"canary": {"steps": STEPS}}, replicas=4)), services={})
    now, waited, moved = release(world, "old", T0, SECOND, pace=4) + SECOND, 0, 0
    while not world.released("new"):
        before = world.status
        decision = world.reconcile("new", now)
        if decision.transition is not None:
            moved += len(decision.transitions)
            assert not counts_only(before, world.status)
        elif world.status != before and not counts_only(before, world.status):
            changed = {
                key for key in before.keys() | world.status.keys() if before.get(key) != world.status.get(key)
            }
            assert "trafficMovedTime" in changed, changed  # traffic moved: a fact, written at once
        elif world.status != before:
            waited += 1
        world.ripen(1)
        now += SECOND
    assert moved >= 5
    assert waited > 0


def test_a_steps_end_and_the_next_steps_beginning_are_one_status_write_that_counts_both() -> None:
    """`[setWeight 50, pause]`: six transitions (updated, step 0 completed, paused, pause ended,
    promoted, completed) in four reconciles, since a pause and the promotion begin on the facts that
    ended the step before them. The status counts every transition, so the Events, named by that
    count, stay one per transition, and the reason is the last one's."""
    world = World(plan_of(spec({"canary": {"steps": STEPS}})), {})
    now = release(world, "old", T0, SECOND, pace=2) + SECOND
    start, taken, recorded = world.status["transitionCount"], [], 0
    while not world.released("new"):
        decision = world.reconcile("new", now)
        if decision.transitions:
            recorded += 1
            taken += [t.reason.value for t in decision.transitions]
            assert world.status["transitionCount"] == start + len(taken)
            assert world.status["reason"] == taken[-1]
        world.ripen(2)
        now += SECOND
    assert taken == [
        "RolloutUpdated",
        "RolloutStepCompleted",
        "RolloutPaused",
        "RolloutStepCompleted",
        "RolloutPromoted",
        "RolloutCompleted",
    ]
    assert recorded == 4


def test_a_weight_only_reported_waits_with_the_counts_for_the_transition_it_allows() -> None:
    """A basic canary without Services: its weight is only reported, so a reconcile moving it may
    wait (as `RolloutController` holds it) and the next decides on it as applied: the step it held
    ends, or the promotion completes, in the write that moves it. Every status write then records
    a transition (four, for six transitions), the weight is reported, and each move is stamped.
    Decided from the status last written, the weight's own write and the step's end were two
    writes, twice a release."""
    world = World(plan_of(spec({"canary": {"steps": STEPS}})), {})
    now = release(world, "old", T0, SECOND, pace=2) + SECOND
    writes, weights, stamps = 0, [], set()
    for before, decision in held_release(world, now, CountsHold(delay=5.0), ripen=lambda _: world.ripen(2)):
        writes += 1
        assert decision.transitions or counts_only(before, world.status, reported=True)
        if decision.transitions:
            weights.append(world.status["weights"]["canary"])
            stamps.add(world.status.get("trafficMovedTime"))
    assert world.released("new")
    assert weights == [0, 50, 50, 0]  # updated; step 0 ended (paused) at 50; promoted; completed at 0
    assert len(stamps - {None}) == 2  # the weight's two moves, each stamped in the write that made it
    assert writes <= 5  # four transitions, and at most one write of counts alone after the last


KEY = ("default", "web")
READY = {**WRITTEN, "readyReplicas": 3, "availableReplicas": 3}


def held_release(
    world: World,
    now: datetime.datetime,
    hold: CountsHold,
    *,
    ripen: Callable[[int], None],
    moving: bool = False,
) -> Iterator[tuple[dict[str, Any], Decision]]:
    """Reconcile `world` to "new" a second apart, its statuses held as `RolloutController` holds
    them (a held one is not written, and waits no longer than `hold` allows); each status written,
    with the status before it and the decision. `ripen(tick)` after every reconcile; `moving`:
    whether the hold is told of a move in flight (`Decision.moving`)."""
    for tick in range(TICKS):
        if world.released("new"):
            return
        before = world.status
        decision = world.reconcile("new", now)
        held = hold.wait(
            KEY, before, world.status, float(tick), reported=True, moving=decision.moving and moving
        )
        if held is not None:
            assert held <= max(hold.delay, hold.moving_delay)
            world.status = before  # held: not written
        elif world.status != before:
            hold.written(KEY)
            yield before, decision
        ripen(tick)
        now += SECOND


def test_counts_alone_wait_the_delay_from_the_first_difference_seen() -> None:
    hold = CountsHold(delay=5.0)
    assert hold.wait(KEY, WRITTEN, READY, now=100.0) == 5.0
    later = {**READY, "replicas": 4}  # a second count change does not restart the wait
    assert hold.wait(KEY, WRITTEN, later, now=103.0) == 2.0
    assert hold.wait(KEY, WRITTEN, later, now=105.0) is None  # its time is up: written now


def test_a_fact_is_never_held_and_a_write_ends_the_wait() -> None:
    hold = CountsHold(delay=5.0)
    assert hold.wait(KEY, WRITTEN, READY, now=100.0) == 5.0
    assert hold.wait(KEY, WRITTEN, {**READY, "transitionCount": 4}, now=101.0) is None
    hold.written(KEY)
    assert hold.wait(KEY, READY, {**READY, "replicas": 4}, now=140.0) == 5.0  # afresh


def test_counts_back_to_what_is_written_wait_afresh_when_they_change_again() -> None:
    hold = CountsHold(delay=5.0)
    assert hold.wait(KEY, WRITTEN, READY, now=100.0) == 5.0
    assert hold.wait(KEY, WRITTEN, dict(WRITTEN), now=101.0) is None  # nothing to write
    assert hold.wait(KEY, WRITTEN, READY, now=130.0) == 5.0


def test_each_rollout_waits_on_its_own() -> None:
    hold = CountsHold(delay=5.0)
    assert hold.wait(KEY, WRITTEN, READY, now=100.0) == 5.0
    assert hold.wait(("default", "api"), WRITTEN, READY, now=104.0) == 5.0


@pytest.mark.parametrize("moving", [True, False])
def test_while_a_move_waits_on_slow_pods_the_counts_wait_for_its_end(moving: bool) -> None:
    """Pods that take 8 s to come or go (a controller-manager behind, as at 1,000 Rollouts):
    counts held the 5 s of a quiet Rollout were written alone between the transitions; held while
    the move waits on the pods (`Decision.moving`), every write of the release records a
    transition, and the counts are never more than `moving_delay` late."""
    world = World(plan_of(spec({"canary": {"steps": STEPS}})), {})
    now = release(world, "old", T0, SECOND, pace=2) + SECOND
    world.lagging = True
    alone, transitions = 0, 0

    def ripen(tick: int) -> None:
        if tick % 8 == 7:
            world.ripen(1)

    hold = CountsHold(delay=5.0, moving_delay=60.0)
    for _, decision in held_release(world, now, hold, ripen=ripen, moving=moving):
        transitions += bool(decision.transitions)
        alone += not decision.transitions
    assert world.released("new")
    assert transitions == 4
    assert (alone == 0) if moving else (alone >= 2)


def test_a_scale_of_the_hpa_target_never_waits_longer_than_a_quiet_count() -> None:
    hold = CountsHold(delay=5.0, moving_delay=60.0)
    assert hold.wait(KEY, WRITTEN, READY, now=100.0, moving=True) == 60.0
    assert hold.wait(("default", "api"), WRITTEN, {**READY, "hpaReplicas": 3}, now=100.0, moving=True) == 5.0
    assert hold.wait(("default", "db"), WRITTEN, READY, now=100.0, moving=False) == 5.0
