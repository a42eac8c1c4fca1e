"""The Rollout state machine: which state comes next, and how each move is reported.

It decides and never calls the API. The legal moves are a `transitions` machine, so an
illegal move (promoting an aborted rollout, say) is refused here instead of being written.
Each move carries a stable reason: the same word becomes the condition's reason and the
Event's reason, and tests and docs import these names instead of retyping them.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from transitions import Machine, MachineError

from delivery.api.rollout import AnalysisPhase, Phase
from delivery.api.rollout import MachineState as State

PHASE = {
    State.HEALTHY: Phase.HEALTHY,
    State.PROGRESSING: Phase.PROGRESSING,
    State.ANALYSING: Phase.PROGRESSING,
    State.PROMOTING: Phase.PROGRESSING,
    State.PAUSED: Phase.PAUSED,
    State.ABORTING: Phase.ABORTED,
    State.ABORTED: Phase.ABORTED,
    State.DEGRADED: Phase.DEGRADED,
}


class Reason(enum.StrEnum):
    """Stable reasons of conditions and Events, one per trigger."""

    ROLLOUT_UPDATED = "RolloutUpdated"
    STEP_COMPLETED = "RolloutStepCompleted"
    PAUSED = "RolloutPaused"
    RESUMED = "RolloutResumed"
    ANALYSIS_STARTED = "AnalysisRunStarted"
    ANALYSIS_SUCCESSFUL = "AnalysisRunSuccessful"
    ANALYSIS_FAILED = "AnalysisRunFailed"
    ANALYSIS_INCONCLUSIVE = "AnalysisRunInconclusive"
    PROMOTED = "RolloutPromoted"
    COMPLETED = "RolloutCompleted"
    ABORTED = "RolloutAborted"
    ROLLED_BACK = "RolloutRolledBack"
    RETRIED = "RolloutRetried"
    DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    EXPERIMENT_STARTED = "ExperimentStarted"
    EXPERIMENT_SUCCESSFUL = "ExperimentSuccessful"
    EXPERIMENT_FAILED = "ExperimentFailed"
    # Not transitions: Events of single measurements the limits may still tolerate.
    MEASUREMENT_FAILED = "AnalysisMeasurementFailed"
    MEASUREMENT_INCONCLUSIVE = "AnalysisMeasurementInconclusive"
    MEASUREMENT_ERROR = "AnalysisMeasurementError"


MEASURED = {
    AnalysisPhase.FAILED: Reason.MEASUREMENT_FAILED,
    AnalysisPhase.INCONCLUSIVE: Reason.MEASUREMENT_INCONCLUSIVE,
    AnalysisPhase.ERROR: Reason.MEASUREMENT_ERROR,
}
"""The reason of a notable measurement's Event, by the measurement's phase: the reasons are all here,
and analysis, which measures, knows nothing of the machine."""


IN_FLIGHT = (State.PROGRESSING, State.PAUSED, State.ANALYSING, State.PROMOTING)
ANYWHERE: tuple[State, ...] = ()


@dataclass(frozen=True)
class Move:
    trigger: str
    sources: tuple[State, ...]  # empty: from any state
    dest: State
    reason: Reason
    warning: bool = False


MOVES = (
    # A new revision starts from anywhere: it supersedes whatever was in flight.
    Move("update", ANYWHERE, State.PROGRESSING, Reason.ROLLOUT_UPDATED),
    Move(
        "complete_step",
        (State.PROGRESSING, State.ANALYSING, State.PAUSED),
        State.PROGRESSING,
        Reason.STEP_COMPLETED,
    ),
    Move("pause", (State.PROGRESSING, State.ANALYSING, State.PAUSED), State.PAUSED, Reason.PAUSED),
    Move("resume", (State.PAUSED, State.DEGRADED), State.PROGRESSING, Reason.RESUMED),
    Move("analyse", (State.PROGRESSING,), State.ANALYSING, Reason.ANALYSIS_STARTED),
    Move("analysis_passed", (State.ANALYSING,), State.PROGRESSING, Reason.ANALYSIS_SUCCESSFUL),
    # An experiment step waits in Analysing, as an analysis step; an inconclusive one pauses as one.
    Move("experiment", (State.PROGRESSING,), State.ANALYSING, Reason.EXPERIMENT_STARTED),
    Move("experiment_passed", (State.ANALYSING,), State.PROGRESSING, Reason.EXPERIMENT_SUCCESSFUL),
    Move("experiment_failed", IN_FLIGHT, State.ABORTING, Reason.EXPERIMENT_FAILED, warning=True),
    # Background and post-promotion analysis run beside the steps, so they fail or pause from there.
    Move("analysis_failed", IN_FLIGHT, State.ABORTING, Reason.ANALYSIS_FAILED, warning=True),
    Move(
        "analysis_inconclusive",
        (State.PROGRESSING, State.ANALYSING, State.PAUSED),
        State.PAUSED,
        Reason.ANALYSIS_INCONCLUSIVE,
        warning=True,
    ),
    Move("promote", (*IN_FLIGHT, State.DEGRADED), State.PROMOTING, Reason.PROMOTED),
    Move("complete", (State.PROMOTING, State.PROGRESSING), State.HEALTHY, Reason.COMPLETED),
    Move("abort", (*IN_FLIGHT, State.DEGRADED), State.ABORTING, Reason.ABORTED, warning=True),
    Move("rolled_back", (State.ABORTING,), State.ABORTED, Reason.ROLLED_BACK, warning=True),
    Move("retry", (State.ABORTED,), State.PROGRESSING, Reason.RETRIED),
    Move(
        "deadline_exceeded",
        (State.PROGRESSING, State.PROMOTING),
        State.DEGRADED,
        Reason.DEADLINE_EXCEEDED,
        warning=True,
    ),
)
MOVE_BY_TRIGGER = {move.trigger: move for move in MOVES}


class IllegalMove(ValueError):
    """A trigger that the current state does not allow."""


@dataclass(frozen=True)
class Transition:
    """One decided move: the source of a condition update and of one Event."""

    source: State
    dest: State
    trigger: str
    reason: Reason
    message: str
    warning: bool

    @property
    def phase(self) -> Phase:
        return PHASE[self.dest]


class _Model:
    state: str


def _machine(model: _Model, initial: State) -> Machine:
    return Machine(
        model=model,
        states=[state.value for state in State],
        transitions=[
            {
                "trigger": move.trigger,
                "source": [state.value for state in move.sources] or "*",
                "dest": move.dest.value,
            }
            for move in MOVES
        ],
        initial=initial.value,
        auto_transitions=False,
    )


@functools.cache
def _destination(state: State, trigger: str) -> State | None:
    """Where `trigger` leads from `state` (None: not allowed), as the `transitions` machine says.

    Cached: building the machine took a tenth of the controller's CPU in a release (several
    decisions per reconcile ask), and its answer for a pair never changes.
    """
    model = _Model()
    _machine(model, state)
    try:
        getattr(model, trigger)()
    except (MachineError, AttributeError):
        return None
    return State(model.state)


def move(state: State, trigger: str, message: str) -> Transition:
    """The transition that `trigger` makes from `state`, or IllegalMove."""
    dest = _destination(state, trigger)
    if dest is None:
        raise IllegalMove(f"{trigger} is not allowed from {state}")
    spec = MOVE_BY_TRIGGER[trigger]
    return Transition(state, dest, trigger, spec.reason, message, spec.warning)
