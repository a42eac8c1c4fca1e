"""One reconcile's decision for a Rollout: from what is observed, the next state and the next move.

Pure: the same observation gives the same decision, so a controller killed at any moment decides
again what it decided before. Each transition is an Event, so the history in `kubectl get events`
is the machine's path, step by step; one status write records the transitions of a reconcile. A
reconcile takes one transition, or two when a step ends and the next one begins on the same facts
(`_entered`): the world is observed once for both, and the status is written once.
The status is the machine's memory: the state, the step, when a pause began, when traffic last
moved (the scale-down delays count from there). Those times move only with a fact (`_dated`), so
a Rollout that has nothing left to do decides the same status at every reconcile: no write.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, get_type_hints

from delivery.analysis.runner import Phase, Run, RunKey, Wanted, current, lifecycle
from delivery.api.rollout import AnalysisKind, ExperimentPhase, SpecRef, StrategyName
from delivery.api.rollout import MachineState as State
from delivery.machine import IllegalMove, Reason, Transition, move
from delivery.report import EventNote, sequence_of
from delivery.rollout import experiment
from delivery.rollout import gates as gating
from delivery.rollout.analyses import wanted
from delivery.rollout.experiment import Record as ExperimentRecord
from delivery.rollout.plan import Plan
from strategies import (
    Analysis,
    BlueGreenFacts,
    CanaryFacts,
    Desired,
    Pause,
    ReplicaSetState,
    RollingFacts,
    decide_bluegreen,
    decide_canary,
    decide_rolling,
)
from strategies.types import Role

PREFIX = "delivery.luojilab.com/"
PROMOTE, ABORT, RETRY, PAUSE = (PREFIX + c for c in ("promote", "abort", "retry", "pause"))
COMMANDS = (ABORT, RETRY, PROMOTE, PAUSE)  # the order they are taken in when several are set
OPEN_GATE = PREFIX + "open-gate"  # its value names a gate the release is held at (rollout/gates.py)
ANNOTATIONS = (*COMMANDS, OPEN_GATE)  # what people write on a Rollout for the controller to consume


def parse_time(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def format_time(value: datetime.datetime) -> str:
    """To the microsecond (RFC 3339, as a Lease's renewTime): a pause or a delay counts from when
    it began, not from its whole second, so it is neither cut short nor waited for late."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Memory:
    """What the status remembers between reconciles."""

    state: State | None = None
    stable: str | None = None
    revision: str | None = None  # the revision being rolled out (the pod template's)
    index: int = 0
    aborted: bool = False
    paused_by_person: bool = False
    pause_started: datetime.datetime | None = None
    traffic_moved: datetime.datetime | None = None
    progressed: datetime.datetime | None = None
    ready: int = 0  # ready pods at the last reconcile: a change is progress
    reason: str | None = None  # of the last transition: tells a pause for analysis from others

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Memory:
        return cls(
            state=State(status["state"]) if status.get("state") else None,
            stable=status.get("stableRevision"),
            revision=status.get("canaryRevision"),
            index=status.get("currentStepIndex") or 0,
            aborted=bool(status.get("abort")),
            paused_by_person=bool(status.get("pausedByPerson")),
            pause_started=parse_time(status.get("pauseStartTime")),
            traffic_moved=parse_time(status.get("trafficMovedTime")),
            progressed=parse_time(status.get("progressTime")),
            ready=status.get("readyReplicas") or 0,
            reason=status.get("reason"),
        )


# The wall-clock fields of the memory, found by their type so that a new one cannot be left out.
STAMPS = frozenset(name for name, hint in get_type_hints(Memory).items() if hint == datetime.datetime | None)

MOVING = frozenset({State.PROGRESSING, State.PROMOTING, State.ABORTING})
"""The states whose end is the ReplicaSets reaching what the strategy asks (`Decision.moving`)."""


@dataclass(frozen=True)
class Observed:
    plan: Plan
    revision: str
    memory: Memory
    replicasets: tuple[ReplicaSetState, ...]  # oldest first
    applied_weight: int
    applied_selectors: Mapping[Role, str]
    commands: Mapping[str, str]
    now: datetime.datetime
    runs: tuple[Run, ...] = ()  # the analyses in the status, with this reconcile's measurements
    gates: gating.Record = field(default_factory=gating.Record)  # status.gates
    answers: tuple[gating.Answer, ...] = ()  # the hooks asked this reconcile
    rollout: str = ""  # the Rollout's name: its experiment ReplicaSets' names start with it
    experiment: ExperimentRecord | None = None  # status.experiment
    experiment_available: Mapping[str, int] = field(default_factory=dict)  # its ReplicaSets' available pods
    experiment_sources: Mapping[SpecRef, Mapping[str, Any]] = field(default_factory=dict)  # pod templates


@dataclass(frozen=True)
class Decision:
    memory: Memory
    desired: Desired
    transitions: tuple[Transition, ...] = ()  # in the order taken; each one is an Event
    consumed: tuple[str, ...] = ()  # command annotations acted on (or refused): to remove
    note: str = ""  # why a command was refused, or what an analysis waits for
    requeue_after: float | None = None
    runs: tuple[Run, ...] = ()  # the analyses after the decision: started, stopped, bounded
    gates: gating.Record | None = None  # status.gates after the decision; None: the spec has no hooks
    gated: tuple[bool, str, str] | None = None  # the Gated condition (held, reason, message)
    events: tuple[tuple[int, EventNote], ...] = ()  # gates opened or held, each named by what it says
    experiment: ExperimentRecord | None = None  # status.experiment after the decision

    @property
    def transition(self) -> Transition | None:
        """The last transition taken: the state the status reports, its reason and message."""
        return self.transitions[-1] if self.transitions else None

    @property
    def moving(self) -> bool:
        """Whether a move is in flight and waits on the pods: a step, the promotion or an abort
        whose end is the ReplicaSets reaching what is asked (a pause or an analysis waits on
        something else, and a Healthy Rollout has nothing to reach)."""
        return self.memory.state in MOVING and not self.desired.done


def _transition(memory: Memory, trigger: str, message: str) -> Transition:
    return move(memory.state or State.HEALTHY, trigger, message)


def release_of(memory: Memory, revision: str) -> gating.Release:
    """What of the memory the gates read."""
    return gating.Release(memory.state, memory.stable, revision, memory.index)


def _release(o: Observed, memory: Memory) -> gating.Release:
    return release_of(memory, o.revision)


def _hold(o: Observed, memory: Memory) -> gating.Hold | None:
    return gating.hold(o.plan, o.gates, _release(o, memory))


def _held_at(o: Observed, memory: Memory) -> tuple[str, int]:
    """The revision and step the strategy is asked for: a release held at a gate keeps what it had
    before it (nothing of the new revision before its start, the previous step's weight before
    an increase, the last step's before promotion)."""
    index = min(memory.index, len(o.plan.steps))
    held = _hold(o, memory)
    stable = memory.stable or o.revision
    if held is None:
        return o.revision, index
    if held.point is gating.Point.START or (held.point is gating.Point.STEP and index == 0):
        return stable, index
    return o.revision, index - 1


def _desired(o: Observed, memory: Memory) -> Desired:
    plan = o.plan
    stable = memory.stable or o.revision
    revision, index = _held_at(o, memory)
    delay = plan.abort_scale_down_delay if memory.aborted else plan.scale_down_delay
    allowed = memory.traffic_moved is None or (o.now - memory.traffic_moved).total_seconds() >= delay
    allowed = allowed and not _post_promotion_pending(o, memory)
    if plan.kind is StrategyName.CANARY:
        return decide_canary(
            CanaryFacts(
                replicas=plan.replicas,
                steps=plan.strategy_steps,
                index=index,
                stable=stable,
                canary=revision,
                observed=o.replicasets,
                applied_weight=o.applied_weight,
                applied_selectors=o.applied_selectors,
                traffic_routed=plan.router is not None,
                aborted=memory.aborted,
                scale_down_allowed=allowed,
                pace=plan.pace,
                min_pods=plan.min_pods,
                dynamic_stable=plan.dynamic_stable,
            )
        )
    if plan.kind is StrategyName.BLUE_GREEN:
        return decide_bluegreen(
            BlueGreenFacts(
                replicas=plan.replicas,
                stable=stable,
                new=revision,
                observed=o.replicasets,
                applied_selectors=o.applied_selectors,
                preview_replicas=plan.preview_replicas,
                promote=memory.state is State.PROMOTING,
                aborted=memory.aborted,
                scale_down_allowed=allowed,
            )
        )
    return decide_rolling(
        RollingFacts(
            replicas=plan.replicas,
            new=o.revision,
            observed=o.replicasets,
            max_surge=plan.max_surge,
            max_unavailable=plan.max_unavailable,
        )
    )


def _new_revision(o: Observed, memory: Memory) -> tuple[Memory, Transition] | None:
    if memory.revision == o.revision:
        return None
    if memory.stable is None:
        message = f"first revision {o.revision}: no steps"
    elif o.revision == memory.stable:
        message = f"back to the stable revision {o.revision}: steps skipped"
    else:
        message = f"new revision {o.revision} replaces {memory.revision}"
    fresh = Memory(
        state=memory.state,
        stable=memory.stable or o.revision,
        revision=o.revision,
        traffic_moved=memory.traffic_moved,
        ready=memory.ready,
    )
    return fresh, _transition(memory, "update", message)


Outcome = tuple[Memory, Transition | None, float | None]  # the memory, the move, when to look again


def _command(o: Observed, memory: Memory) -> tuple[Memory, Transition | None, str, str] | None:
    """The first command annotation present, acted on; a refused one is reported, not retried."""
    name = next((name for name in COMMANDS if name in o.commands), None)
    if name is None:
        return None
    trigger, changed, message = _command_move(o, memory, name)
    try:
        return changed, _transition(memory, trigger, message), name, ""
    except IllegalMove:
        state = memory.state.value if memory.state else "new"
        return memory, None, name, f"{name.removeprefix(PREFIX)} ignored: the rollout is {state}"


def _command_move(o: Observed, memory: Memory, name: str) -> tuple[str, Memory, str]:
    if name == ABORT:
        return "abort", memory, "aborted by a person"
    if name == RETRY:
        return (
            "retry",
            replace(memory, index=0, pause_started=None, paused_by_person=False),
            "retried by a person",
        )
    if name == PAUSE:
        return "pause", replace(memory, paused_by_person=True, pause_started=o.now), "paused by a person"
    return _promotion(o, memory, full=o.commands[name] == "full")


def _promotion(o: Observed, memory: Memory, *, full: bool) -> tuple[str, Memory, str]:
    """What a person's promote means where the rollout is: the next step, all of them, a resume."""
    last = len(o.plan.steps)
    if o.plan.kind is StrategyName.BLUE_GREEN or memory.state is State.PROMOTING:
        return "promote", memory, "promoted by a person"
    if _paused_for_analysis(memory) and not _on_analysis_step(o, memory):
        resumed = replace(memory, pause_started=None)
        return "resume", resumed, "resumed by a person: the inconclusive analysis is accepted"
    if full:
        skipped = replace(memory, index=last, pause_started=None, paused_by_person=False)
        return "promote", skipped, "promoted fully by a person: remaining steps skipped"
    on_pause_step = memory.index < last and isinstance(o.plan.steps[memory.index].step, Pause)
    if memory.state is State.PAUSED and memory.paused_by_person and not on_pause_step:
        return "resume", replace(memory, paused_by_person=False, pause_started=None), "resumed by a person"
    advanced = replace(memory, index=min(memory.index + 1, last), pause_started=None, paused_by_person=False)
    return "complete_step", advanced, f"step {memory.index} promoted by a person"


def _elapsed(o: Observed, since: datetime.datetime | None) -> float:
    return (o.now - since).total_seconds() if since else 0.0


def _moved(memory: Memory, trigger: str, message: str, changed: Memory | None = None) -> Outcome:
    return changed or memory, _transition(memory, trigger, message), None


def _progressing(o: Observed, memory: Memory, desired: Desired) -> Outcome:
    plan = o.plan
    if memory.stable == o.revision or plan.kind is StrategyName.ROLLING:
        if desired.done:
            return _moved(memory, "complete", "fully promoted", replace(memory, stable=o.revision))
    elif plan.kind is StrategyName.BLUE_GREEN:
        if desired.done:
            return _preview_ready(o, memory)
    elif memory.index >= len(plan.steps):
        return _moved(memory, "promote", "all steps completed")
    else:
        return _canary_step(o, memory, desired)
    return memory, None, None


def _preview_ready(o: Observed, memory: Memory) -> Outcome:
    plan = o.plan
    if plan.pre_promotion is not None and not _passed(o, _pre_promotion_key(o)):
        return _moved(memory, "analyse", "preview ready: pre-promotion analysis")
    if plan.auto_promotion and plan.auto_promotion_seconds is None:
        return _moved(memory, "promote", "preview ready: promoting")
    waiting = replace(memory, pause_started=o.now)
    memory, transition, _ = _moved(memory, "pause", "preview ready: waiting for promotion", waiting)
    return memory, transition, plan.auto_promotion_seconds


def _canary_step(o: Observed, memory: Memory, desired: Desired) -> Outcome:
    step = o.plan.steps[memory.index]
    index = memory.index
    if isinstance(step.step, Pause):
        length = "until promoted" if step.pause_seconds is None else f"{step.pause_seconds:g}s"
        paused = replace(memory, pause_started=o.now)
        memory, transition, _ = _moved(memory, "pause", f"step {index}: pause {length}", paused)
        return memory, transition, step.pause_seconds
    if step.experiment is not None:
        return _moved(memory, "experiment", f"step {index}: experiment")
    if isinstance(step.step, Analysis):
        return _moved(memory, "analyse", f"step {index}: analysis")
    if desired.done:
        return _moved(memory, "complete_step", f"step {index} completed", replace(memory, index=index + 1))
    return memory, None, None


def _pause_length(o: Observed, memory: Memory) -> float | None:
    if o.plan.kind is StrategyName.BLUE_GREEN:
        return o.plan.auto_promotion_seconds
    return o.plan.steps[memory.index].pause_seconds if memory.index < len(o.plan.steps) else None


def _paused(o: Observed, memory: Memory, desired: Desired) -> Outcome:
    if _paused_for_analysis(memory):
        return _waiting_on_analysis(o, memory)
    length = None if memory.paused_by_person else _pause_length(o, memory)
    if length is None:
        return memory, None, None  # a person decides
    remaining = length - _elapsed(o, memory.pause_started)
    if remaining > 0:
        return memory, None, remaining
    if o.plan.kind is StrategyName.BLUE_GREEN:
        return _moved(memory, "promote", f"auto-promoted after {length:g}s")
    ended = replace(memory, index=memory.index + 1, pause_started=None)
    return _moved(memory, "complete_step", f"step {memory.index}: pause {length:g}s ended", ended)


def _analysing(o: Observed, memory: Memory, desired: Desired) -> Outcome:
    """A canary step's analysis, or blue-green pre-promotion: the step moves on when it passes."""
    canary = o.plan.kind is StrategyName.CANARY
    if (canary and not _on_analysis_step(o, memory)) or (not canary and o.plan.pre_promotion is None):
        return _moved(memory, "analysis_passed", "the spec no longer asks for this analysis")  # edited
    if canary and o.plan.experiment_at(memory.index) is not None:
        return _experimenting(o, memory)
    key = (AnalysisKind.STEP, o.revision, memory.index, None) if canary else _pre_promotion_key(o)
    run = current(o.runs, key)
    if run is None or run.phase is Phase.RUNNING:
        return memory, None, None  # the controller measures; its next measurement wakes us
    if run.phase is Phase.SUCCESSFUL:
        passed = replace(memory, index=memory.index + 1) if canary else memory
        return _moved(memory, "analysis_passed", run.message, passed)
    return _troubled(o, memory, run)


def _current_experiment(o: Observed, memory: Memory) -> ExperimentRecord | None:
    record = o.experiment
    if record is None or (record.revision, record.step_index) != (o.revision, memory.index):
        return None
    return record


def _experimenting(o: Observed, memory: Memory) -> Outcome:
    """An experiment step: it moves on when the experiment succeeds, aborts when it fails, pauses
    when it is inconclusive (as a step analysis); until then, wait for its duration or analyses."""
    record = _current_experiment(o, memory)
    planned = o.plan.experiment_at(memory.index)
    if record is None or planned is None or not record.final:
        return memory, None, experiment.remaining(planned, record, o.now) if planned else None
    if record.phase is ExperimentPhase.SUCCESSFUL:
        passed = replace(memory, index=memory.index + 1)
        return _moved(memory, "experiment_passed", record.message, passed)
    if record.phase is ExperimentPhase.FAILED:
        return _moved(memory, "experiment_failed", record.message)
    paused = replace(memory, pause_started=o.now)
    message = f"{record.message}; promote to go on, abort to roll back"
    return _moved(memory, "analysis_inconclusive", message, paused)


def _troubled(o: Observed, memory: Memory, run: Run) -> Outcome:
    """A failed analysis aborts; one that cannot decide (inconclusive, or its provider failing
    beyond the limit) pauses, until it recovers by itself or a person promotes or aborts."""
    if run.phase is Phase.FAILED:
        return _moved(memory, "analysis_failed", run.message)
    paused = replace(memory, pause_started=o.now)
    return _moved(memory, "analysis_inconclusive", _pause_message(run), paused)


def _pause_message(run: Run) -> str:
    if run.phase is Phase.ERROR:
        return f"{run.message}; resumes by itself once it measures again"
    return f"{run.message}; promote to go on, abort to roll back"


def _pre_promotion_key(o: Observed) -> RunKey:
    return AnalysisKind.PRE_PROMOTION, o.revision, None, None


def _post_promotion_key(o: Observed) -> RunKey:
    return AnalysisKind.POST_PROMOTION, o.revision, None, None


def _passed(o: Observed, key: RunKey) -> bool:
    run = current(o.runs, key)
    return run is not None and run.phase is Phase.SUCCESSFUL


def _post_promotion_pending(o: Observed, memory: Memory) -> bool:
    """Blue-green after the switch: the old revision keeps its pods until post-promotion passes."""
    return (
        o.plan.post_promotion is not None
        and memory.state is State.PROMOTING
        and memory.stable != o.revision
        and not _passed(o, _post_promotion_key(o))
    )


def _paused_for_analysis(memory: Memory) -> bool:
    return (
        memory.state is State.PAUSED
        and memory.reason == Reason.ANALYSIS_INCONCLUSIVE
        and not memory.paused_by_person
    )


def _on_analysis_step(o: Observed, memory: Memory) -> bool:
    """A step that waits for an outcome: an analysis or an experiment."""
    return (
        o.plan.analysis(AnalysisKind.STEP, memory.index) is not None
        or o.plan.experiment_at(memory.index) is not None
    )


def _wanted_runs(o: Observed, memory: Memory) -> list[Run]:
    keys = [w.key for w in _wanted(o, memory)]
    return [run for run in (current(o.runs, key) for key in keys) if run is not None]


def _wanted(o: Observed, memory: Memory) -> tuple[Wanted, ...]:
    held = _hold(o, memory)
    if held is not None and held.point is gating.Point.START:
        return ()  # nothing of the new revision runs yet, so nothing is measured
    return wanted(
        o.plan,
        state=memory.state,
        index=memory.index,
        stable=memory.stable,
        revision=o.revision,
        applied_selectors=o.applied_selectors,
        experiment=o.experiment,
    )


def _waiting_on_analysis(o: Observed, memory: Memory) -> Outcome:
    """Paused by an analysis: a failure still aborts; once no analysis is undecided, go on. An
    inconclusive experiment has ended: a person decides (promote skips the step, abort rolls back)."""
    if o.plan.experiment_at(memory.index) is not None and _current_experiment(o, memory) is not None:
        return memory, None, None
    runs = _wanted_runs(o, memory)
    failed = next((run for run in runs if run.phase is Phase.FAILED), None)
    if failed is not None:
        return _moved(memory, "analysis_failed", failed.message)
    if any(run.phase in (Phase.INCONCLUSIVE, Phase.ERROR) for run in runs):
        return memory, None, None
    return _moved(memory, "resume", "analysis measures again: resumed", replace(memory, pause_started=None))


def _watching(o: Observed, memory: Memory) -> Outcome | None:
    """Background and post-promotion analysis, whatever the step: a failure aborts, an undecided
    background analysis pauses (post-promotion cannot pause: the release waits in promotion)."""
    if memory.state not in (State.PROGRESSING, State.ANALYSING, State.PAUSED, State.PROMOTING):
        return None
    for run in _wanted_runs(o, memory):
        if run.kind not in (AnalysisKind.BACKGROUND, AnalysisKind.POST_PROMOTION):
            continue
        if run.phase is Phase.FAILED:
            return _moved(memory, "analysis_failed", run.message)
        undecided = run.phase in (Phase.INCONCLUSIVE, Phase.ERROR)
        if undecided and run.kind is AnalysisKind.BACKGROUND and not _paused_for_analysis(memory):
            return _troubled(o, memory, run)
    return None


def _promoting(o: Observed, memory: Memory, desired: Desired) -> Outcome:
    if _post_promotion_pending(o, memory):
        return memory, None, None  # the controller measures; a failure is seen by _watching
    return _complete(o, memory, desired)


def _when_done(trigger: str, message: str) -> Callable[[Observed, Memory, Desired], Outcome]:
    def decide_state(o: Observed, memory: Memory, desired: Desired) -> Outcome:
        if not desired.done:
            return memory, None, None
        changed = (
            replace(memory, stable=o.revision, index=len(o.plan.steps)) if trigger == "complete" else memory
        )
        return _moved(memory, trigger, message.format(stable=memory.stable, revision=o.revision), changed)

    return decide_state


_complete = _when_done("complete", "revision {revision} is stable")

PROGRESS: dict[State, Callable[[Observed, Memory, Desired], Outcome]] = {
    State.PROGRESSING: _progressing,
    State.PAUSED: _paused,
    State.ANALYSING: _analysing,
    State.PROMOTING: _promoting,
    State.ABORTING: _when_done("rolled_back", "back on stable revision {stable}"),
    State.DEGRADED: _when_done("resume", "progressing again"),
}


def _progress(o: Observed, memory: Memory, desired: Desired) -> Outcome:
    """The move the current state takes by itself, and when to look again if time is what it waits for."""
    step = PROGRESS.get(memory.state) if memory.state else None
    return step(o, memory, desired) if step else (memory, None, None)


def _deadline(o: Observed, memory: Memory, desired: Desired) -> Outcome:
    """No progress for progressDeadlineSeconds: Degraded, or aborted with progressDeadlineAbort (as
    Argo's). Waiting on post-promotion analysis is not a lack of progress (the analysis has its own
    limits)."""
    if memory.state not in (State.PROGRESSING, State.PROMOTING) or desired.done:
        return memory, None, None
    if _post_promotion_pending(o, memory):
        return memory, None, None
    remaining = o.plan.progress_deadline - _elapsed(o, memory.progressed)
    if remaining > 0:
        return memory, None, remaining
    if o.plan.progress_deadline_abort:
        return _moved(
            memory, "abort", f"no progress for {o.plan.progress_deadline:g}s: progressDeadlineAbort"
        )
    return _moved(memory, "deadline_exceeded", f"no progress for {o.plan.progress_deadline:g}s")


def _spontaneous(
    o: Observed, memory: Memory, desired: Desired, abort: str | None
) -> tuple[Memory, Transition | None, float | None, gating.Hold | None]:
    """A move the state takes by itself, or else the progress deadline running out; and the
    promotion gate that held the move the state would have taken, if one did.

    A hook that aborts the release (a pre-rollout or rollout no, a rollback yes) comes first; a
    release held at a gate takes no step by itself (its analyses go on: a failure still aborts)."""
    if abort is not None and memory.state in gating.RUNS_IN:
        return (*_moved(memory, "abort", abort), None)
    watched = _watching(o, memory)
    if watched is not None:
        return (*watched, None)
    held = _hold(o, memory)
    if held is not None and held.point is not gating.Point.PROMOTION:
        return memory, None, None, None
    moved, transition, wait = _progress(o, memory, desired)
    if transition is not None and transition.trigger == "promote":
        blocked = gating.promotion(o.plan, o.gates)
        if blocked is not None:
            return memory, None, None, blocked
    if transition is not None:
        return moved, transition, wait, None
    moved, transition, deadline = _deadline(o, moved, desired)
    waits = [w for w in (wait, deadline) if w is not None]
    return moved, transition, min(waits) if waits else None, None


FINISHING = frozenset({"complete_step", "analysis_passed", "experiment_passed"})
ENTERING = frozenset({"pause", "analyse", "experiment", "promote"})


def _entered(
    o: Observed, memory: Memory, desired: Desired, finished: Transition
) -> tuple[Memory, Transition, float | None] | None:
    """The next step's beginning, when a step has just ended and the next one begins on what is
    already known: a pause (its clock starts now), an analysis or an experiment (started by this
    decision), or the promotion after the last step. Taken in the same reconcile as the end, so
    the two are one status write (and one reconcile less to wait for) instead of two.

    Nothing is assumed of the world: the next step's beginning reads only the plan and the
    memory, as it would one reconcile later; a step that waits on the world (a weight, pods) is
    left to the next reconcile, as is a promotion held at a gate. At most one step begins, so a
    decision never runs through a plan."""
    if finished.trigger not in FINISHING:
        return None
    moved, transition, wait, blocked = _spontaneous(o, memory, desired, None)
    if transition is None or transition.trigger not in ENTERING or blocked is not None:
        return None
    return moved, transition, wait


def _requested(o: Observed, memory: Memory) -> tuple[Memory, Transition | None, tuple[str, ...], str]:
    """What people asked for: a new pod template first, then a command annotation."""
    changed = _new_revision(o, memory)
    if changed is not None:
        return changed[0], changed[1], (), ""
    commanded = _command(o, memory)
    if commanded is not None:
        changed_memory, transition, command, note = commanded
        return changed_memory, transition, (command,), note
    return memory, None, (), ""


def _reported_only(o: Observed, desired: Desired) -> bool:
    """Whether the weight `desired` asks for is applied by the status write alone
    (`Plan.weight_reported`): then it is in force once the status that records it is.

    Decided on as applied, what waited on the weight (a step's end, a promotion's completion) is
    taken in the same reconcile: one status write instead of two, a weight's write and the step's
    end read back from it (a basic canary wrote two such per release). Traffic is still counted as
    moving now, so a scale-down waits its delay from this moment as it would have from the write."""
    return o.plan.weight_reported and desired.canary_weight != o.applied_weight


def _moves_traffic(o: Observed, desired: Desired) -> bool:
    """Whether applying `desired` moves traffic: the canary weight changes, or a Service that selects
    one of the rollout's revisions is pointed at another.

    A strategy names a revision for every role it knows, Service or not; only what is applied
    counts. A role with no Service (none named, or named and not there: nothing is selected then)
    can never come to select what is asked, so counting it stamped every reconcile of a basic canary
    with the time, which made every status differ from the last: the write loop at scale. A
    Service that selects none of the revisions yet takes traffic from none of them when it is
    pointed at one, so that is no move either (and it cannot be told apart from a missing one here).
    """
    applied = o.applied_selectors
    return desired.canary_weight != o.applied_weight or any(
        role in applied and applied[role] != revision for role, revision in desired.selectors.items()
    )


def _remember(o: Observed, memory: Memory, *, moved: bool, traffic_moved: bool) -> Memory:
    """Note progress (a transition, or ready pods changing) and the moment traffic moves."""
    ready = sum(rs.ready for rs in o.replicasets)
    if moved or ready != memory.ready or memory.progressed is None:
        memory = replace(memory, progressed=o.now, ready=ready)
    if traffic_moved:
        memory = replace(memory, traffic_moved=o.now)
    return memory


def _facts(memory: Memory) -> tuple[object, ...]:
    """The memory without the clock: each stamp only as there or not (a missing one is a fact)."""
    return tuple(
        getattr(memory, f.name) is not None if f.name in STAMPS else getattr(memory, f.name)
        for f in fields(memory)
    )


def _dated(previous: Memory, memory: Memory, *, moved: bool) -> Memory:
    """`memory` with the stamps of `previous` unless a fact changed: the clock alone never changes it.

    `moved` is a fact the memory does not hold: a transition (the status counts them) or traffic
    moving (which Service selects what is not in the status at all). Every other fact of the
    memory is a field of the status too, so a status can differ from the last by its times only
    in a reconcile that takes a transition or writes to a Service or a router as well.

    Every stamp (any `datetime` field of `Memory`, present or future) dates a fact, so a stamp
    that moves while every fact stays is a comparison that never settles, and the status it is
    written to would differ at every reconcile: one write per reconcile, whose watch event is the
    next reconcile. Decided here, once for all stamps, rather than at each place that sets one;
    and here rather than by comparing statuses without their times, which could not tell a
    traffic move's stamp from a clock's and would drop it: a scale-down would not wait its delay.
    """
    if moved or _facts(memory) != _facts(previous):
        return memory
    return replace(memory, **{name: getattr(previous, name) for name in STAMPS})


def _scale_down_wait(o: Observed, memory: Memory) -> float | None:
    """A scale-down waits for its delay after traffic moved: look again when it has passed."""
    if memory.traffic_moved is None:
        return None
    delay = o.plan.abort_scale_down_delay if memory.aborted else o.plan.scale_down_delay
    remaining = delay - _elapsed(o, memory.traffic_moved)
    return remaining if remaining > 0 else None


def _gated(o: Observed) -> tuple[Observed, gating.Advanced, tuple[str, ...]]:
    """The observation with this reconcile's answers and a person's opening in its gates."""
    answers = o.answers if o.gates.revision == o.revision else ()
    person = o.commands.get(OPEN_GATE)
    advanced = gating.advance(o.plan, o.gates.for_revision(o.revision), answers, person)
    consumed = (OPEN_GATE,) if person is not None else ()
    return replace(o, gates=advanced.record), advanced, consumed


def _gate_report(
    o: Observed, previous: gating.Record, memory: Memory, blocked: gating.Hold | None
) -> tuple[gating.Record | None, tuple[bool, str, str] | None, tuple[tuple[int, EventNote], ...]]:
    if not o.plan.hooks:
        return None, None, ()
    record = gating.settle(o.gates, _hold(o, memory) or blocked, _release(o, memory))
    events = tuple(
        (sequence_of("gate", *key), EventNote(reason, message, warning=reason == gating.GATE_HELD))
        for key, reason, message in gating.changes(previous, record)
    )
    return record, gating.gated(o.plan, record), events


def _experiment_observed(o: Observed) -> Observed:
    """The observation with its experiment concluded from what is observed (ReplicaSets, analyses)."""
    record = o.experiment
    planned = o.plan.experiment_at(record.step_index) if record is not None else None
    if record is None or planned is None or record.revision != o.revision:
        return o
    return replace(o, experiment=experiment.concluded(planned, record, o.experiment_available, o.runs, o.now))


def _experiment_settled(o: Observed, memory: Memory) -> ExperimentRecord | None:
    """The experiment once the release has moved: started on its step, terminated off it."""
    active = (
        o.plan.kind is StrategyName.CANARY
        and memory.state in (State.PROGRESSING, State.ANALYSING, State.PAUSED)
        and memory.stable is not None
        and memory.stable != o.revision
        and o.plan.experiment_at(memory.index) is not None
    )
    return experiment.settled(
        o.plan.experiment_at(memory.index),
        o.experiment,
        active=active,
        aborted=memory.aborted,
        rollout=o.rollout,
        revision=o.revision,
        index=memory.index,
        sources=o.experiment_sources,
    )


def _experiment_wait(o: Observed) -> float | None:
    """A running experiment is looked at again when its duration has passed (paused by a person too)."""
    record = o.experiment
    planned = o.plan.experiment_at(record.step_index) if record is not None else None
    return experiment.remaining(planned, record, o.now) if planned is not None else None


def decide(o: Observed) -> Decision:
    previous = o.gates
    o, advanced, opened = _gated(o)
    o = _experiment_observed(o)
    memory, transition, consumed, note = _requested(o, o.memory)
    consumed += opened
    note = note or advanced.note
    if transition is not None:
        memory = _enter(memory, transition)
    desired = _desired(o, memory)
    observed = o
    if _reported_only(o, desired):
        o = replace(o, applied_weight=desired.canary_weight)
        memory = replace(memory, traffic_moved=o.now)
        desired = _desired(o, memory)
    wait = None
    blocked = None
    taken: tuple[Transition, ...] = (transition,) if transition is not None else ()
    if transition is None:
        memory, transition, wait, blocked = _spontaneous(o, memory, desired, advanced.abort)
        if transition is not None:
            memory = _enter(memory, transition)
            desired = _desired(o, memory)
            taken = (transition,)
            entered = _entered(o, memory, desired, transition)
            if entered is not None:
                memory, begun, wait = entered
                memory = _enter(memory, begun)
                desired = _desired(o, memory)
                taken, transition = (transition, begun), begun
    traffic_moved = _moves_traffic(observed, desired)
    memory = _remember(o, memory, moved=transition is not None, traffic_moved=traffic_moved)
    memory = _dated(o.memory, memory, moved=transition is not None or traffic_moved)
    if transition is not None and transition.trigger == "retry":
        o = replace(o, experiment=None)  # the release starts over: its experiments run again
    o = replace(o, experiment=_experiment_settled(o, memory))
    waits = [w for w in (wait, _scale_down_wait(o, memory), _experiment_wait(o)) if w is not None]
    runs = _runs(o, memory, transition, consumed)
    note = note or _post_promotion_note(o, memory, runs)
    record, condition, events = _gate_report(o, previous, memory, blocked)
    return Decision(
        memory,
        desired,
        taken,
        consumed,
        note,
        min(waits) if waits else None,
        runs,
        gates=record,
        gated=condition,
        events=events,
        experiment=o.experiment,
    )


def _runs(
    o: Observed, memory: Memory, transition: Transition | None, consumed: tuple[str, ...]
) -> tuple[Run, ...]:
    """The analyses after the decision. A retry starts the release over, so the finished analyses
    of the aborted attempt are dropped (their outcome is in the Events), or they would decide again."""
    runs = o.runs
    if transition is not None and transition.trigger == "retry":
        runs = tuple(run for run in runs if run.revision != o.revision or not run.final)
    promoted = PROMOTE in consumed and transition is not None and transition.trigger != "pause"
    return lifecycle(
        runs,
        _wanted(o, memory),
        o.now.replace(microsecond=0),  # analysis is dated in whole seconds, as its status
        promoted_by_person=promoted,
    )


def _post_promotion_note(o: Observed, memory: Memory, runs: tuple[Run, ...]) -> str:
    run = current(runs, _post_promotion_key(o)) if memory.state is State.PROMOTING else None
    if run is None or run.phase not in (Phase.INCONCLUSIVE, Phase.ERROR):
        return ""
    return f"{_pause_message(run)}; the old revision keeps its pods meanwhile"


def _enter(memory: Memory, transition: Transition) -> Memory:
    """The memory as the machine enters `transition.dest`: aborted exactly while aborting or aborted."""
    return replace(
        memory,
        state=transition.dest,
        aborted=transition.dest in (State.ABORTING, State.ABORTED),
        reason=transition.reason.value,
    )
