"""The Rollout's decisions on analysis outcomes: pure, from the runs recorded in the status."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

import pytest

from delivery.analysis.runner import Phase, Run
from delivery.api.rollout import AnalysisKind
from delivery.api.rollout import MachineState as State
from delivery.machine import Reason
from delivery.rollout.decide import PROMOTE, RETRY, Decision, Memory, Observed, decide
from delivery.rollout.plan import InvalidSpec, plan_of
from strategies import ReplicaSetState
from strategies.types import Role

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
LATER = T0 + datetime.timedelta(seconds=30)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "web:2"}]},
}
ANALYSIS = {"templates": [{"templateName": "error-rate"}]}
STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"analysis": ANALYSIS}, {"pause": {}}]
SPLIT = (ReplicaSetState("old", 2, 2), ReplicaSetState("new", 2, 2))


def canary(background: dict[str, Any] | None = None) -> dict[str, Any]:
    strategy: dict[str, Any] = {"steps": STEPS, "scaleDownDelaySeconds": 0}
    if background is not None:
        strategy["analysis"] = background
    return {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": {"canary": strategy},
    }


def bluegreen(**analysis: Any) -> dict[str, Any]:
    return {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": {"blueGreen": {"activeService": "web", "scaleDownDelaySeconds": 0, **analysis}},
    }


def observed(
    spec: dict[str, Any],
    memory: Memory,
    *runs: Run,
    replicasets: tuple[ReplicaSetState, ...] = SPLIT,
    commands: dict[str, str] | None = None,
    selectors: dict[Role, str] | None = None,
    weight: int = 50,
) -> Observed:
    return Observed(
        plan=plan_of(spec),
        revision="new",
        memory=memory,
        replicasets=replicasets,
        applied_weight=weight,
        applied_selectors=selectors or {},
        commands=commands or {},
        now=LATER,
        runs=runs,
    )


def run(kind: AnalysisKind, phase: Phase, step: int | None = None, message: str = "") -> Run:
    return Run(kind, "new", ("error-rate",), T0, step, phase=phase, message=message)


def moved(decision: Decision) -> tuple[Reason, State]:
    assert decision.transition is not None
    return decision.transition.reason, decision.transition.dest


AT_STEP = Memory(state=State.PROGRESSING, stable="old", revision="new", index=1, progressed=T0, ready=4)
ANALYSING = replace(AT_STEP, state=State.ANALYSING)
FAILED = "step 1 analysis: metric error-rate failed: 1 failed (failureLimit 0); last: value [0.2]"


def test_an_analysis_step_starts_its_analysis() -> None:
    decision = decide(observed(canary(), AT_STEP))
    assert moved(decision) == (Reason.ANALYSIS_STARTED, State.ANALYSING)
    assert [(r.key, r.phase, r.started_at) for r in decision.runs] == [
        ((AnalysisKind.STEP, "new", 1, None), Phase.RUNNING, LATER)
    ]
    assert decision.desired.canary_weight == 50  # the step holds its traffic


def test_a_running_analysis_holds_the_step() -> None:
    running = run(AnalysisKind.STEP, Phase.RUNNING, 1)
    decision = decide(observed(canary(), ANALYSING, running))
    assert decision.transition is None
    assert decision.runs == (running,)


def path(decision: Decision) -> list[tuple[Reason, State]]:
    return [(t.reason, t.dest) for t in decision.transitions]


def test_a_successful_analysis_completes_the_step_and_the_next_pause_begins() -> None:
    decision = decide(observed(canary(), ANALYSING, run(AnalysisKind.STEP, Phase.SUCCESSFUL, 1, "ok")))
    assert path(decision) == [(Reason.ANALYSIS_SUCCESSFUL, State.PROGRESSING), (Reason.PAUSED, State.PAUSED)]
    assert decision.memory.index == 2


def test_a_failed_analysis_aborts_and_says_which_metric_and_value() -> None:
    decision = decide(observed(canary(), ANALYSING, run(AnalysisKind.STEP, Phase.FAILED, 1, FAILED)))
    assert moved(decision) == (Reason.ANALYSIS_FAILED, State.ABORTING)
    assert decision.transition is not None
    assert decision.transition.message == FAILED
    assert decision.transition.warning
    assert decision.desired.canary_weight == 0  # traffic leaves the canary at once


def test_an_inconclusive_analysis_pauses_for_a_person() -> None:
    decision = decide(observed(canary(), ANALYSING, run(AnalysisKind.STEP, Phase.INCONCLUSIVE, 1, "why")))
    assert moved(decision) == (Reason.ANALYSIS_INCONCLUSIVE, State.PAUSED)
    assert decision.transition is not None
    assert decision.transition.message == "why; promote to go on, abort to roll back"


def test_a_person_promotes_past_an_inconclusive_analysis() -> None:
    paused = replace(ANALYSING, state=State.PAUSED, reason=Reason.ANALYSIS_INCONCLUSIVE)
    stuck = run(AnalysisKind.STEP, Phase.INCONCLUSIVE, 1)
    assert decide(observed(canary(), paused, stuck)).transition is None  # waits for a person
    promoted = decide(observed(canary(), paused, stuck, commands={PROMOTE: "step"}))
    assert moved(promoted) == (Reason.STEP_COMPLETED, State.PROGRESSING)
    assert promoted.memory.index == 2


def test_an_unreachable_provider_pauses_and_the_release_resumes_when_it_answers() -> None:
    erroring = run(
        AnalysisKind.STEP, Phase.ERROR, 1, "step 1 analysis: metric error-rate error: prometheus down"
    )
    paused = decide(observed(canary(), ANALYSING, erroring))
    assert moved(paused) == (Reason.ANALYSIS_INCONCLUSIVE, State.PAUSED)
    assert paused.transition is not None
    assert "prometheus down; resumes by itself" in paused.transition.message
    assert paused.runs == (erroring,)  # still wanted: still measured while paused

    still = decide(observed(canary(), paused.memory, erroring))
    assert still.transition is None
    measuring = replace(erroring, phase=Phase.RUNNING)
    recovered = decide(observed(canary(), paused.memory, measuring))
    assert moved(recovered) == (Reason.RESUMED, State.PROGRESSING)
    assert recovered.runs == (measuring,)  # not stopped on the way through Progressing
    again = decide(observed(canary(), recovered.memory, *recovered.runs))
    assert moved(again) == (Reason.ANALYSIS_STARTED, State.ANALYSING)
    assert again.runs == (measuring,)  # the same analysis goes on, counts and all
    holding = decide(observed(canary(), again.memory, *again.runs))
    assert holding.transition is None  # it has to finish its measurements before the step passes


def test_a_person_pausing_and_resuming_mid_analysis_does_not_cut_it_short() -> None:
    running = run(AnalysisKind.STEP, Phase.RUNNING, 1)
    pause = decide(observed(canary(), ANALYSING, running, commands={"delivery.luojilab.com/pause": "x"}))
    assert moved(pause) == (Reason.PAUSED, State.PAUSED)
    resume = decide(observed(canary(), pause.memory, *pause.runs, commands={PROMOTE: "step"}))
    assert moved(resume) == (Reason.RESUMED, State.PROGRESSING)
    analyse = decide(observed(canary(), resume.memory, *resume.runs))
    assert moved(analyse) == (Reason.ANALYSIS_STARTED, State.ANALYSING)
    assert analyse.runs == (running,)
    assert decide(observed(canary(), analyse.memory, *analyse.runs)).transition is None


def test_a_failure_while_paused_still_aborts() -> None:
    paused = replace(ANALYSING, state=State.PAUSED, reason=Reason.ANALYSIS_INCONCLUSIVE)
    decision = decide(observed(canary(), paused, run(AnalysisKind.STEP, Phase.FAILED, 1, FAILED)))
    assert moved(decision) == (Reason.ANALYSIS_FAILED, State.ABORTING)


def test_background_analysis_runs_beside_the_steps_and_aborts_on_failure() -> None:
    spec = canary(background={**ANALYSIS, "startingStep": 0})
    first = Memory(state=State.PROGRESSING, stable="old", revision="new", index=0, progressed=T0, ready=4)
    started = decide(observed(spec, first, replicasets=(ReplicaSetState("old", 4, 4),), weight=0))
    assert [r.kind for r in started.runs] == [AnalysisKind.BACKGROUND]
    failed = replace(started.runs[0], phase=Phase.FAILED, message="background analysis: metric x failed")
    decision = decide(observed(spec, first, failed))
    assert moved(decision) == (Reason.ANALYSIS_FAILED, State.ABORTING)


def test_background_analysis_waits_for_its_starting_step() -> None:
    spec = canary(background={**ANALYSIS, "startingStep": 2})
    decision = decide(observed(spec, AT_STEP))
    assert [r.kind for r in decision.runs] == [AnalysisKind.STEP]


def test_an_inconclusive_background_analysis_pauses_and_a_person_resumes_with_a_fresh_one() -> None:
    spec = canary(background=ANALYSIS)
    at_weight = replace(AT_STEP, index=0)
    stuck = run(AnalysisKind.BACKGROUND, Phase.INCONCLUSIVE, message="background analysis: undecided")
    paused = decide(observed(spec, at_weight, stuck))
    assert moved(paused) == (Reason.ANALYSIS_INCONCLUSIVE, State.PAUSED)
    assert decide(observed(spec, paused.memory, stuck)).transition is None  # no pause step ends it
    resumed = decide(observed(spec, paused.memory, stuck, commands={PROMOTE: "step"}))
    assert moved(resumed) == (Reason.RESUMED, State.PROGRESSING)
    assert resumed.memory.index == 0  # the step is not skipped: the person accepted the analysis
    assert [(r.kind, r.phase) for r in resumed.runs] == [
        (AnalysisKind.BACKGROUND, Phase.INCONCLUSIVE),  # kept for the record
        (AnalysisKind.BACKGROUND, Phase.RUNNING),  # and a new one guards the rest of the release
    ]


def test_aborting_stops_the_running_analyses() -> None:
    running = run(AnalysisKind.STEP, Phase.RUNNING, 1)
    decision = decide(observed(canary(), ANALYSING, running, commands={"delivery.luojilab.com/abort": "x"}))
    assert moved(decision) == (Reason.ABORTED, State.ABORTING)
    assert decision.runs[0].final
    assert "stopped" in decision.runs[0].message


def test_a_retry_starts_the_analyses_over() -> None:
    aborted = replace(ANALYSING, state=State.ABORTED, aborted=True)
    failed = replace(run(AnalysisKind.STEP, Phase.FAILED, 1, FAILED), finished_at=T0)
    decision = decide(observed(canary(), aborted, failed, commands={RETRY: "x"}))
    assert moved(decision) == (Reason.RETRIED, State.PROGRESSING)
    assert decision.runs == ()


PREVIEW = (ReplicaSetState("old", 2, 2), ReplicaSetState("new", 2, 2))
BG_WAITING = Memory(state=State.PROGRESSING, stable="old", revision="new", progressed=T0, ready=4)
ON_OLD = {Role.ACTIVE: "old"}


def test_blue_green_analyses_the_preview_before_promotion() -> None:
    spec = bluegreen(prePromotionAnalysis=ANALYSIS)
    analyse = decide(observed(spec, BG_WAITING, replicasets=PREVIEW, selectors=ON_OLD))
    assert moved(analyse) == (Reason.ANALYSIS_STARTED, State.ANALYSING)
    assert [r.kind for r in analyse.runs] == [AnalysisKind.PRE_PROMOTION]
    erroring = replace(analyse.runs[0], phase=Phase.ERROR, message="pre-promotion analysis: down")
    paused = decide(observed(spec, analyse.memory, erroring, replicasets=PREVIEW, selectors=ON_OLD))
    assert moved(paused) == (Reason.ANALYSIS_INCONCLUSIVE, State.PAUSED)
    measuring = replace(erroring, phase=Phase.RUNNING)
    resumed = decide(observed(spec, paused.memory, measuring, replicasets=PREVIEW, selectors=ON_OLD))
    assert moved(resumed) == (Reason.RESUMED, State.PROGRESSING)
    assert resumed.runs == (measuring,)
    again = decide(observed(spec, resumed.memory, *resumed.runs, replicasets=PREVIEW, selectors=ON_OLD))
    assert moved(again) == (Reason.ANALYSIS_STARTED, State.ANALYSING)  # not promoted: it must pass
    passed = replace(analyse.runs[0], phase=Phase.SUCCESSFUL, message="ok")
    promoting = decide(observed(spec, analyse.memory, passed, replicasets=PREVIEW, selectors=ON_OLD))
    assert path(promoting) == [
        (Reason.ANALYSIS_SUCCESSFUL, State.PROGRESSING),
        (Reason.PROMOTED, State.PROMOTING),  # the preview passed: promoted in the same reconcile
    ]


def test_blue_green_keeps_the_old_revision_until_post_promotion_passes() -> None:
    spec = bluegreen(postPromotionAnalysis=ANALYSIS)
    promoting = replace(BG_WAITING, state=State.PROMOTING, traffic_moved=T0)
    switched = {Role.ACTIVE: "new"}
    started = decide(observed(spec, promoting, replicasets=PREVIEW, selectors=switched))
    assert started.transition is None
    assert [r.kind for r in started.runs] == [AnalysisKind.POST_PROMOTION]
    assert started.desired.replicas["old"] == 2  # held for a switch back

    running = started.runs[0]
    assert (
        decide(observed(spec, promoting, running, replicasets=PREVIEW, selectors=switched)).transition is None
    )
    failed = replace(running, phase=Phase.FAILED, message="post-promotion analysis: metric x failed")
    aborting = decide(observed(spec, promoting, failed, replicasets=PREVIEW, selectors=switched))
    assert moved(aborting) == (Reason.ANALYSIS_FAILED, State.ABORTING)
    assert aborting.desired.selectors[Role.ACTIVE] == "old"

    passed = replace(running, phase=Phase.SUCCESSFUL, message="ok")
    released = decide(observed(spec, promoting, passed, replicasets=PREVIEW, selectors=switched))
    assert released.desired.replicas["old"] == 0  # the old revision may go now


def test_waiting_on_post_promotion_analysis_is_not_a_lack_of_progress() -> None:
    spec = bluegreen(postPromotionAnalysis=ANALYSIS)
    spec["progressDeadlineSeconds"] = 10
    promoting = replace(BG_WAITING, state=State.PROMOTING)
    running = run(AnalysisKind.POST_PROMOTION, Phase.RUNNING)
    decision = decide(observed(spec, promoting, running, replicasets=PREVIEW, selectors={Role.ACTIVE: "new"}))
    assert decision.transition is None  # 30s without progress, yet not Degraded


def test_blue_green_post_promotion_that_cannot_decide_waits_and_says_so() -> None:
    spec = bluegreen(postPromotionAnalysis=ANALYSIS)
    promoting = replace(BG_WAITING, state=State.PROMOTING)
    erroring = run(AnalysisKind.POST_PROMOTION, Phase.ERROR, message="post-promotion analysis: down")
    decision = decide(
        observed(spec, promoting, erroring, replicasets=PREVIEW, selectors={Role.ACTIVE: "new"})
    )
    assert decision.transition is None
    assert decision.note.startswith("post-promotion analysis: down; resumes by itself")
    accepted = decide(
        observed(
            spec,
            promoting,
            erroring,
            replicasets=PREVIEW,
            selectors={Role.ACTIVE: "new"},
            commands={PROMOTE: "x"},
        )
    )
    assert accepted.runs[0].phase is Phase.SUCCESSFUL
    assert "accepted by a person" in accepted.runs[0].message


def test_rolling_analysis_is_refused_with_a_message() -> None:
    spec = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": {"rolling": {"analysis": ANALYSIS}},
    }
    with pytest.raises(InvalidSpec, match=r"rolling\.analysis is not supported yet"):
        plan_of(spec)


def test_an_analysis_the_spec_no_longer_asks_for_does_not_hold_the_step() -> None:
    edited = canary()
    edited["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"setWeight": 60}]
    decision = decide(observed(edited, ANALYSING, run(AnalysisKind.STEP, Phase.RUNNING, 1)))
    assert moved(decision) == (Reason.ANALYSIS_SUCCESSFUL, State.PROGRESSING)
    assert decision.memory.index == 1  # the step now at that index runs next
    assert decision.runs[0].final  # the analysis is stopped
