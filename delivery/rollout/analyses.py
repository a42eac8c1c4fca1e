"""Which analyses a release needs in its current state: pure, read by the decision.

- a canary step's analysis while the machine is on that step (started when it starts analysing;
  kept through a pause and the resume after it, so a resumed step finds its analysis going on);
- the canary's background analysis from its starting step until the last step is done;
- blue-green pre-promotion analysis while the preview waits (started when it starts analysing,
  kept through pauses and resumes until promotion);
- blue-green post-promotion analysis once the active Service selects the new revision, until the
  release completes (the old revision keeps its pods meanwhile, so an abort has somewhere to go);
- an experiment step's analyses while the machine is on that step and its experiment (this revision's,
  this step's) is not over: started once its ReplicaSets are all available (Running).
"""

from __future__ import annotations

from collections.abc import Mapping

from delivery.analysis.runner import Wanted
from delivery.api.rollout import AnalysisKind, ExperimentPhase, RolloutAnalysis, StrategyName
from delivery.api.rollout import MachineState as State
from delivery.rollout.experiment import Record
from delivery.rollout.plan import Plan
from strategies.types import Role

WAITING = (State.PROGRESSING, State.ANALYSING, State.PAUSED)  # before promotion


def templates(analysis: RolloutAnalysis) -> tuple[str, ...]:
    return tuple(ref.template_name for ref in analysis.templates)


def _want(
    kind: AnalysisKind,
    revision: str,
    analysis: RolloutAnalysis,
    step: int | None = None,
    *,
    start: bool = True,
) -> Wanted:
    return Wanted(kind, revision, templates(analysis), step, start)


def wanted(
    plan: Plan,
    *,
    state: State | None,
    index: int,
    stable: str | None,
    revision: str,
    applied_selectors: Mapping[Role, str],
    experiment: Record | None = None,
) -> tuple[Wanted, ...]:
    if stable is None or stable == revision or state is None:
        return ()
    runs: list[Wanted] = []
    if plan.kind is StrategyName.CANARY and index < len(plan.steps):
        step = plan.analysis(AnalysisKind.STEP, index)
        if step is not None and state in WAITING:
            runs.append(_want(AnalysisKind.STEP, revision, step, index, start=state is State.ANALYSING))
        runs += _experiment(plan, state, index, revision, experiment)
        background = plan.background
        if background is not None and state in WAITING and index >= (background.starting_step or 0):
            runs.append(_want(AnalysisKind.BACKGROUND, revision, background))
    if plan.kind is StrategyName.BLUE_GREEN:
        if plan.pre_promotion is not None and state in WAITING:
            start = state is State.ANALYSING
            runs.append(_want(AnalysisKind.PRE_PROMOTION, revision, plan.pre_promotion, start=start))
        switched = applied_selectors.get(Role.ACTIVE) == revision
        if plan.post_promotion is not None and state is State.PROMOTING and switched:
            runs.append(_want(AnalysisKind.POST_PROMOTION, revision, plan.post_promotion))
    return tuple(runs)


def _experiment(plan: Plan, state: State, index: int, revision: str, record: Record | None) -> list[Wanted]:
    planned = plan.experiment_at(index)
    if planned is None or state not in WAITING or record is None:
        return []
    if (record.revision, record.step_index) != (revision, index) or record.final:
        return []
    start = record.phase is ExperimentPhase.RUNNING
    return [
        Wanted(AnalysisKind.EXPERIMENT, revision, templates(a.analysis), index, start, analysis=a.name)
        for a in planned.analyses
    ]
