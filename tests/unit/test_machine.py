"""The state machine allows exactly the documented moves and names each with a stable reason."""

from __future__ import annotations

import pytest

from delivery.api.rollout import MachineState as State
from delivery.api.rollout import Phase
from delivery.machine import MOVES, PHASE, IllegalMove, Reason, move


@pytest.mark.parametrize(
    ("state", "trigger", "dest", "reason"),
    [
        (State.HEALTHY, "update", State.PROGRESSING, Reason.ROLLOUT_UPDATED),
        (State.ABORTED, "update", State.PROGRESSING, Reason.ROLLOUT_UPDATED),
        (State.PROGRESSING, "complete_step", State.PROGRESSING, Reason.STEP_COMPLETED),
        (State.PROGRESSING, "pause", State.PAUSED, Reason.PAUSED),
        (State.PAUSED, "resume", State.PROGRESSING, Reason.RESUMED),
        (State.PROGRESSING, "analyse", State.ANALYSING, Reason.ANALYSIS_STARTED),
        (State.ANALYSING, "analysis_passed", State.PROGRESSING, Reason.ANALYSIS_SUCCESSFUL),
        (State.ANALYSING, "analysis_failed", State.ABORTING, Reason.ANALYSIS_FAILED),
        (State.ANALYSING, "analysis_inconclusive", State.PAUSED, Reason.ANALYSIS_INCONCLUSIVE),
        # background and post-promotion analysis decide from wherever the release is
        (State.PROGRESSING, "analysis_failed", State.ABORTING, Reason.ANALYSIS_FAILED),
        (State.PAUSED, "analysis_failed", State.ABORTING, Reason.ANALYSIS_FAILED),
        (State.PROMOTING, "analysis_failed", State.ABORTING, Reason.ANALYSIS_FAILED),
        (State.PROGRESSING, "analysis_inconclusive", State.PAUSED, Reason.ANALYSIS_INCONCLUSIVE),
        (State.PAUSED, "analysis_inconclusive", State.PAUSED, Reason.ANALYSIS_INCONCLUSIVE),
        (State.PAUSED, "promote", State.PROMOTING, Reason.PROMOTED),
        (State.PROMOTING, "complete", State.HEALTHY, Reason.COMPLETED),
        (State.PAUSED, "abort", State.ABORTING, Reason.ABORTED),
        (State.ABORTING, "rolled_back", State.ABORTED, Reason.ROLLED_BACK),
        (State.ABORTED, "retry", State.PROGRESSING, Reason.RETRIED),
        (State.PROGRESSING, "deadline_exceeded", State.DEGRADED, Reason.DEADLINE_EXCEEDED),
    ],
)
def test_legal_moves(state: State, trigger: str, dest: State, reason: Reason) -> None:
    transition = move(state, trigger, "why")
    assert (transition.source, transition.dest, transition.reason, transition.message) == (
        state,
        dest,
        reason,
        "why",
    )


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (State.ABORTED, "promote"),
        (State.HEALTHY, "abort"),
        (State.HEALTHY, "complete_step"),
        (State.ABORTED, "complete_step"),
        (State.ABORTING, "resume"),
        (State.PROGRESSING, "rolled_back"),
        (State.HEALTHY, "retry"),
        (State.PAUSED, "no_such_trigger"),
        (State.PROMOTING, "analysis_inconclusive"),  # the switch is made: it waits, it cannot pause
        (State.ABORTED, "analysis_failed"),
    ],
)
def test_illegal_moves_are_refused(state: State, trigger: str) -> None:
    with pytest.raises(IllegalMove, match=trigger):
        move(state, trigger, "")


def test_every_state_has_a_phase_and_failures_are_warnings() -> None:
    assert set(PHASE) == set(State)
    assert PHASE[State.ABORTING] is Phase.ABORTED
    warnings = {m.reason for m in MOVES if m.warning}
    assert warnings == {
        Reason.ANALYSIS_FAILED,
        Reason.ANALYSIS_INCONCLUSIVE,
        Reason.ABORTED,
        Reason.ROLLED_BACK,
        Reason.DEADLINE_EXCEEDED,
        Reason.EXPERIMENT_FAILED,
    }
    assert len({m.trigger for m in MOVES}) == len(MOVES)
