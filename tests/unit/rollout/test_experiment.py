"""The canary experiment step: its life (pure, rollout/experiment.py) and the release's decisions on it."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

import pytest

from delivery.analysis.runner import Phase, Run
from delivery.api.rollout import AnalysisKind, CanaryStep, ExperimentPhase, SpecRef
from delivery.api.rollout import MachineState as State
from delivery.machine import Reason
from delivery.rollout import experiment
from delivery.rollout.decide import ABORT, PROMOTE, RETRY, Decision, Memory, Observed, decide
from delivery.rollout.plan import plan_of
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL
from delivery.rollout.status import status_of
from strategies import ReplicaSetState

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def pods(image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


SOURCES = {SpecRef.STABLE: {**pods("web:1"), "metadata": {"labels": {"app": "web", HASH_LABEL: "old"}}}}
SOURCES[SpecRef.CANARY] = pods("web:2")


def step(duration: str | None = "60s", *, required: bool = False) -> dict[str, Any]:
    """Argo's documented baseline-against-canary experiment step."""
    body: dict[str, Any] = {
        "templates": [
            {"name": "baseline", "specRef": "stable"},
            {"name": "canary", "specRef": "canary", "replicas": 2, "metadata": {"labels": {"role": "x"}}},
        ],
        "analyses": [
            {
                "name": "compare",
                "templateName": "judge",
                "requiredForCompletion": required,
                "args": [
                    {"name": "baseline-hash", "value": "{{templates.baseline.podTemplateHash}}"},
                    {"name": "canary-rs", "value": "{{ templates.canary.replicaset.name }}"},
                ],
            }
        ],
    }
    if duration is not None:
        body["duration"] = duration
    return {"experiment": body}


def spec(experiment_step: dict[str, Any]) -> dict[str, Any]:
    return {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": pods("web:2"),
        "strategy": {"canary": {"steps": [{"setWeight": 25}, experiment_step, {"setWeight": 50}]}},
    }


ON_STEP = Memory(state=State.PROGRESSING, stable="old", revision="new", index=1, progressed=T0, ready=4)
EXPERIMENTING = replace(ON_STEP, state=State.ANALYSING)


def observed(
    memory: Memory,
    record: experiment.Record | None = None,
    *runs: Run,
    now: datetime.datetime = T0,
    available: dict[str, int] | None = None,
    experiment_step: dict[str, Any] | None = None,
    commands: dict[str, str] | None = None,
) -> Observed:
    return Observed(
        plan=plan_of(spec(experiment_step or step())),
        revision="new",
        memory=memory,
        replicasets=(ReplicaSetState("old", 3, 3), ReplicaSetState("new", 1, 1)),
        applied_weight=25,
        applied_selectors={},
        commands=commands or {},
        now=now,
        runs=runs,
        rollout="web",
        experiment=record,
        experiment_available=available or {},
        experiment_sources=SOURCES,
    )


def moved(decision: Decision) -> tuple[Reason, State]:
    assert decision.transition is not None
    return decision.transition.reason, decision.transition.dest


def started() -> experiment.Record:
    record = decide(observed(ON_STEP)).experiment
    assert record is not None
    return record


def running(at_seconds: float = 0) -> experiment.Record:
    return replace(started(), phase=ExperimentPhase.RUNNING, available_at=at(at_seconds))


def compare(phase: Phase, message: str = "") -> Run:
    return Run(
        AnalysisKind.EXPERIMENT, "new", ("judge",), T0, 1, phase=phase, message=message, analysis="compare"
    )


def test_the_step_starts_an_experiment_of_one_replicaset_per_template() -> None:
    decision = decide(observed(ON_STEP))
    assert moved(decision) == (Reason.EXPERIMENT_STARTED, State.ANALYSING)
    record = decision.experiment
    assert record is not None
    assert (record.revision, record.step_index, record.phase) == ("new", 1, ExperimentPhase.PENDING)
    assert [(t.name, t.replica_set, t.replicas) for t in record.templates] == [
        ("baseline", "web-new-1-baseline", 1),  # Argo's default of one replica
        ("canary", "web-new-1-canary", 2),
    ]
    hashes = {t.pod_template_hash for t in record.templates}
    assert len(hashes) == 2
    assert not hashes & {"old", "new"}
    assert experiment.desired(record) == {"web-new-1-baseline": 1, "web-new-1-canary": 2}
    assert decision.runs == ()  # analyses wait for the ReplicaSets to be available
    assert decision.desired.canary_weight == 25  # the step holds the previous step's traffic


def test_the_hash_is_the_same_at_every_reconcile() -> None:
    assert started() == started()


def test_its_analyses_start_once_every_replicaset_is_available() -> None:
    record = started()
    some = decide(observed(EXPERIMENTING, record, available={"web-new-1-baseline": 1, "web-new-1-canary": 1}))
    assert some.experiment is not None
    assert some.experiment.phase is ExperimentPhase.PENDING
    assert some.runs == ()
    every = {"web-new-1-baseline": 1, "web-new-1-canary": 2}
    decision = decide(observed(EXPERIMENTING, record, now=at(5), available=every))
    assert decision.experiment is not None
    assert (decision.experiment.phase, decision.experiment.available_at) == (ExperimentPhase.RUNNING, at(5))
    assert [(r.key, r.phase) for r in decision.runs] == [
        ((AnalysisKind.EXPERIMENT, "new", 1, "compare"), Phase.RUNNING)
    ]
    assert decision.transition is None
    assert decision.requeue_after == 60  # the duration counts from availability


def test_the_duration_passed_ends_the_step_and_stops_its_analyses() -> None:
    seen = {"web-new-1-baseline": 1, "web-new-1-canary": 2}
    decision = decide(observed(EXPERIMENTING, running(), compare(Phase.RUNNING), now=at(60), available=seen))
    assert moved(decision) == (Reason.EXPERIMENT_SUCCESSFUL, State.PROGRESSING)
    assert decision.memory.index == 2
    assert decision.experiment is not None
    assert decision.experiment.phase is ExperimentPhase.SUCCESSFUL
    assert experiment.desired(decision.experiment) == {}  # its ReplicaSets go
    assert [t.available for t in decision.experiment.templates] == [0, 0]  # whenever it was seen last
    assert [r.phase for r in decision.runs] == [Phase.SUCCESSFUL]  # stopped, nothing failed


def test_a_failed_analysis_aborts_the_release_and_ends_the_experiment() -> None:
    failed = compare(Phase.FAILED, "metric latency failed")
    decision = decide(observed(EXPERIMENTING, running(), failed, now=at(10)))
    assert moved(decision) == (Reason.EXPERIMENT_FAILED, State.ABORTING)
    assert decision.experiment is not None
    assert decision.experiment.phase is ExperimentPhase.FAILED
    assert "analysis compare: metric latency failed" in decision.experiment.message
    assert experiment.desired(decision.experiment) == {}


def test_an_inconclusive_analysis_pauses_until_a_person_decides() -> None:
    inconclusive = compare(Phase.INCONCLUSIVE, "too few samples")
    paused = decide(observed(EXPERIMENTING, running(), inconclusive, now=at(10)))
    assert moved(paused) == (Reason.ANALYSIS_INCONCLUSIVE, State.PAUSED)
    assert paused.experiment is not None
    assert paused.experiment.phase is ExperimentPhase.INCONCLUSIVE
    again = decide(observed(paused.memory, paused.experiment, *paused.runs, now=at(20)))
    assert again.transition is None  # it stays paused: the experiment has ended
    promoted = decide(
        observed(paused.memory, paused.experiment, *paused.runs, now=at(30), commands={PROMOTE: ""})
    )
    assert moved(promoted) == (Reason.STEP_COMPLETED, State.PROGRESSING)
    assert promoted.memory.index == 2


def test_required_analyses_end_the_step_before_the_duration() -> None:
    required = step("1h", required=True)
    record = running()
    decision = decide(
        observed(EXPERIMENTING, record, compare(Phase.SUCCESSFUL), now=at(5), experiment_step=required)
    )
    assert moved(decision) == (Reason.EXPERIMENT_SUCCESSFUL, State.PROGRESSING)
    assert decision.experiment is not None
    assert "compare passed" in decision.experiment.message


def test_a_required_analysis_still_running_outlasts_the_duration() -> None:
    required = step("60s", required=True)
    decision = decide(
        observed(EXPERIMENTING, running(), compare(Phase.RUNNING), now=at(600), experiment_step=required)
    )
    assert decision.transition is None
    assert decision.experiment is not None
    assert decision.experiment.phase is ExperimentPhase.RUNNING


def test_without_a_duration_nor_required_analyses_it_runs_until_promoted() -> None:
    open_ended = step(None)
    decision = decide(
        observed(
            EXPERIMENTING, running(), compare(Phase.SUCCESSFUL), now=at(86400), experiment_step=open_ended
        )
    )
    assert decision.transition is None
    assert decision.experiment is not None
    assert not decision.experiment.final


def test_an_abort_terminates_the_experiment() -> None:
    decision = decide(
        observed(EXPERIMENTING, running(), compare(Phase.RUNNING), now=at(10), commands={ABORT: ""})
    )
    assert moved(decision) == (Reason.ABORTED, State.ABORTING)
    assert decision.experiment is not None
    assert decision.experiment.phase is ExperimentPhase.TERMINATED
    assert "aborted" in decision.experiment.message
    assert experiment.desired(decision.experiment) == {}
    assert [r.phase for r in decision.runs] == [Phase.SUCCESSFUL]  # stopped


def test_the_arguments_name_the_experiments_replicasets() -> None:
    record = started()
    plan = plan_of(spec(step()))
    analysis = experiment.Filled(plan, record).analysis(AnalysisKind.EXPERIMENT, 1, "compare")
    assert analysis is not None
    assert analysis.args is not None
    baseline = record.templates[0].pod_template_hash
    assert [a.value for a in analysis.args] == [baseline, "web-new-1-canary"]
    assert experiment.Filled(plan, record).analysis(AnalysisKind.EXPERIMENT, 1, "other") is None


def test_a_replicaset_runs_its_revisions_pods_under_a_hash_of_its_own() -> None:
    record = started()
    planned = plan_of(spec(step())).experiment_at(1)
    assert planned is not None
    rollout: dict[str, Any] = {"apiVersion": "delivery.luojilab.com/v1alpha1", "kind": "Rollout"}
    rollout["metadata"] = {"name": "web", "namespace": "ns", "uid": "u"}
    body = experiment.replica_set(
        rollout, planned.templates[0], record.templates[0], SOURCES, match_labels={"app": "web"}
    )
    assert body is not None
    digest = record.templates[0].pod_template_hash
    assert body["spec"]["selector"] == {"matchLabels": {"app": "web", HASH_LABEL: digest}}
    labels = body["spec"]["template"]["metadata"]["labels"]
    assert labels == {"app": "web", HASH_LABEL: digest, experiment.EXPERIMENT_LABEL: "baseline"}
    assert body["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"  # the stable's
    assert body["metadata"]["labels"][ROLLOUT_LABEL] == "web"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "u"
    canary = experiment.replica_set(
        rollout, planned.templates[1], record.templates[1], SOURCES, match_labels={"app": "web"}
    )
    assert canary is not None
    assert canary["spec"]["selector"]["matchLabels"]["role"] == "x"


def test_the_record_survives_the_status() -> None:
    record = running(3)
    assert experiment.Record.from_status(record.to_status()) == record


def test_weight_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="experiment template weight is not supported"):
        CanaryStep.model_validate(
            {"experiment": {"templates": [{"name": "a", "specRef": "canary", "weight": 5}]}}
        )


def test_a_template_with_a_service_gets_one_on_its_containers_ports() -> None:
    with_service = step()
    with_service["experiment"]["templates"][1]["service"] = {}
    with_service["experiment"]["templates"][0]["service"] = {"name": "baseline-svc"}
    record = decide(observed(ON_STEP, experiment_step=with_service)).experiment
    assert record is not None
    assert [t.service for t in record.templates] == ["baseline-svc", "web-new-1-canary"]
    assert set(experiment.services(record)) == {"baseline-svc", "web-new-1-canary"}
    planned = plan_of(spec(with_service)).experiment_at(1)
    assert planned is not None
    rollout: dict[str, Any] = {"apiVersion": "delivery.luojilab.com/v1alpha1", "kind": "Rollout"}
    rollout["metadata"] = {"name": "web", "namespace": "ns", "uid": "u"}
    sources = {**SOURCES, SpecRef.CANARY: pods("web:2")}
    sources[SpecRef.CANARY]["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    replicaset = experiment.replica_set(
        rollout, planned.templates[1], record.templates[1], sources, match_labels={"app": "web"}
    )
    assert replicaset is not None
    body = experiment.service(rollout, record.templates[1], replicaset)
    assert body is not None
    assert body["metadata"]["name"] == "web-new-1-canary"
    assert body["spec"]["selector"] == replicaset["spec"]["selector"]["matchLabels"]
    assert body["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080, "targetPort": 8080}]
    baseline = experiment.replica_set(
        rollout, planned.templates[0], record.templates[0], sources, match_labels={"app": "web"}
    )
    assert baseline is not None
    assert experiment.service(rollout, record.templates[0], baseline) is None  # no port to serve
    ended = replace(record, phase=ExperimentPhase.SUCCESSFUL)
    assert experiment.services(ended) == {}


def test_a_retry_runs_the_experiment_again() -> None:
    failed = decide(observed(EXPERIMENTING, running(), compare(Phase.FAILED, "slow"), now=at(10)))
    aborted = replace(failed.memory, state=State.ABORTED)
    retried = decide(observed(aborted, failed.experiment, *failed.runs, now=at(20), commands={RETRY: ""}))
    assert moved(retried) == (Reason.RETRIED, State.PROGRESSING)
    assert retried.experiment is None  # the failed one is forgotten with its analyses
    back = replace(retried.memory, index=1)
    again = decide(observed(back, retried.experiment, *retried.runs, now=at(30)))
    assert moved(again) == (Reason.EXPERIMENT_STARTED, State.ANALYSING)
    assert again.experiment is not None
    assert again.experiment.phase is ExperimentPhase.PENDING


def test_a_person_pausing_the_experiment_still_wakes_at_its_end() -> None:
    paused = replace(EXPERIMENTING, state=State.PAUSED, paused_by_person=True, pause_started=at(1))
    decision = decide(observed(paused, running(), compare(Phase.RUNNING), now=at(20)))
    assert decision.transition is None
    assert decision.experiment is not None
    assert decision.experiment.phase is ExperimentPhase.RUNNING  # a person's pause does not end it
    assert decision.requeue_after == 40


def test_an_experiment_cut_short_starts_over_when_the_release_comes_back_to_its_step() -> None:
    cut = replace(running(), phase=ExperimentPhase.TERMINATED, message="terminated")
    decision = decide(observed(ON_STEP, cut))
    assert moved(decision) == (Reason.EXPERIMENT_STARTED, State.ANALYSING)
    assert decision.experiment is not None
    assert decision.experiment.phase is ExperimentPhase.PENDING


def test_the_status_holds_the_experiment_and_its_condition() -> None:
    decision = decide(observed(ON_STEP))
    status = status_of(
        {}, decision, generation=1, replicasets=(), replicas=4, selector="app=web", now="2026-01-01T00:00:00Z"
    )
    assert status["experiment"]["phase"] == "Pending"
    assert [t["replicaSet"] for t in status["experiment"]["templates"]] == [
        "web-new-1-baseline",
        "web-new-1-canary",
    ]
    (condition,) = [c for c in status["conditions"] if c["type"] == "Experiment"]
    assert (condition["status"], condition["reason"]) == ("True", "ExperimentPending")
