"""The runner: schedule, limits and outcomes as pure functions of (metric, measurements, now)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.analysis.run import EVENT_SEQUENCES, Taken
from delivery.analysis.runner import (
    ERROR_RETRY,
    HISTORY_BYTES,
    MESSAGE_LENGTH,
    VALUE_LENGTH,
    Measurement,
    MetricState,
    Phase,
    Run,
    Wanted,
    assess_value,
    conclude,
    due,
    lifecycle,
    record,
    runs_from_status,
    stop,
)
from delivery.api.analysis import Metric
from delivery.api.rollout import (
    ANALYSIS_HISTORY_LIMIT,
    MEASUREMENT_HISTORY_LIMIT,
    AnalysisKind,
    RolloutStatus,
)
from delivery.machine import MEASURED, Reason

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def metric(**fields: Any) -> Metric:
    wire = {
        "name": "error-rate",
        "provider": {"prometheus": {"query": "q"}},
        "successCondition": "result[0] < 0.05",
        **fields,
    }
    return Metric.model_validate(wire)


def measured(phase: Phase, seconds: float) -> Measurement:
    return Measurement(phase, at(seconds), "[0.01]" if phase is not Phase.ERROR else None, "m")


def replay(spec: Metric, phases: list[Phase], every: float = 10) -> MetricState:
    state = MetricState(spec.name)
    for i, phase in enumerate(phases):
        state = record(spec, state, measured(phase, i * every))
    return state


# --- one value under the conditions ------------------------------------------------------------


SUCCESS = {"successCondition": "result[0] < 0.05"}
FAILURE = {"failureCondition": "result[0] > 0.1"}


@pytest.mark.parametrize(
    ("conditions", "value", "phase", "says"),
    [
        (SUCCESS, [0.01], Phase.SUCCESSFUL, ""),
        (SUCCESS, [0.2], Phase.FAILED, "successCondition `result[0] < 0.05` does not hold"),
        (FAILURE, [0.2], Phase.FAILED, "failureCondition `result[0] > 0.1` holds"),
        (FAILURE, [0.07], Phase.SUCCESSFUL, ""),
        (SUCCESS | FAILURE, [0.07], Phase.INCONCLUSIVE, "neither condition holds"),
        (SUCCESS | FAILURE, [0.2], Phase.FAILED, "failureCondition"),
        (SUCCESS | FAILURE, [0.01], Phase.SUCCESSFUL, ""),
        (SUCCESS, [], Phase.ERROR, "successCondition `result[0] < 0.05` cannot be evaluated"),
        ({"successCondition": "result"}, 3, Phase.ERROR, "must give true or false"),
        ({"successCondition": "result < ("}, 3, Phase.ERROR, "cannot be evaluated"),
        ({"successCondition": "default(result, 0) < 1"}, None, Phase.SUCCESSFUL, ""),
        ({"successCondition": "isNaN(result[0])"}, [float("nan")], Phase.SUCCESSFUL, ""),
    ],
)
def test_a_value_under_the_conditions(
    conditions: dict[str, str], value: Any, phase: Phase, says: str
) -> None:
    spec = Metric.model_validate({"name": "m", "provider": {"prometheus": {"query": "q"}}, **conditions})
    outcome = assess_value(spec, value, T0)
    assert (outcome.phase, outcome.at) == (phase, T0)
    assert says in outcome.message


# --- limits and counts -------------------------------------------------------------------------

S, F, N, E = Phase.SUCCESSFUL, Phase.FAILED, Phase.INCONCLUSIVE, Phase.ERROR  # N: no decision


@pytest.mark.parametrize(
    ("fields", "phases", "expected"),
    [
        ({}, [S], S),  # no interval: one measurement
        ({}, [F], F),
        ({"interval": "10s", "count": 3}, [S, S], Phase.RUNNING),
        ({"interval": "10s", "count": 3}, [S, S, S], S),
        ({"interval": "10s", "count": 3, "failureLimit": 1}, [S, F, S], S),  # one failure tolerated
        ({"interval": "10s", "count": 5, "failureLimit": 1}, [F, S, F], F),  # the second one is not
        ({"interval": "10s", "count": 3}, [N], N),
        ({"interval": "10s", "count": 3, "inconclusiveLimit": 1}, [N, S, S], S),
        ({"interval": "10s", "count": 3, "consecutiveErrorLimit": 2}, [E, E], Phase.RUNNING),
        ({"interval": "10s", "count": 3, "consecutiveErrorLimit": 2}, [E, E, E], E),
        (
            {"interval": "10s", "count": 3, "consecutiveErrorLimit": 2},
            [E, E, E, S],
            Phase.RUNNING,
        ),  # recovered
        ({"interval": "10s", "count": 2, "consecutiveErrorLimit": 2}, [E, E, S, E, E, S], S),  # not in a row
        ({"interval": "10s"}, [S] * 50, Phase.RUNNING),  # no count: until the release moves on
    ],
)
def test_limits_and_counts(fields: dict[str, Any], phases: list[Phase], expected: Phase) -> None:
    assert replay(metric(**fields), phases).phase is expected


def test_errors_are_retried_not_counted() -> None:
    state = replay(metric(interval="10s", count=2), [E, S, E])
    assert (state.count, state.successful, state.error, state.consecutive_error) == (1, 1, 2, 1)


def test_the_message_says_which_limit_and_the_last_value() -> None:
    state = replay(metric(interval="10s", count=5), [F])
    assert state.message.startswith("1 failed (failureLimit 0)")
    assert "value [0.01]" in state.message


def test_only_the_latest_measurements_are_kept_but_every_one_is_counted() -> None:
    state = replay(metric(interval="1s"), [S] * 30)
    assert len(state.measurements) == MEASUREMENT_HISTORY_LIMIT
    assert state.count == 30
    assert state.measurements[-1].at == at(29 * 10)


# --- the schedule ------------------------------------------------------------------------------


def test_the_first_measurement_waits_for_the_initial_delay() -> None:
    assert due(metric(initialDelay="30s"), MetricState("m"), T0) == at(30)
    assert due(metric(), MetricState("m"), T0) == T0


def test_the_next_measurement_is_an_interval_after_the_last() -> None:
    spec = metric(interval="20s", count=3)
    assert due(spec, replay(spec, [S]), T0) == at(20)


def test_an_error_is_retried_after_the_interval_or_the_default() -> None:
    assert due(metric(interval="20s", count=3), replay(metric(interval="20s", count=3), [E]), T0) == at(20)
    assert due(metric(), replay(metric(), [E]), T0) == at(ERROR_RETRY)


def test_nothing_is_due_once_the_metric_is_final() -> None:
    assert due(metric(), replay(metric(), [S]), T0) is None
    assert due(metric(interval="5s", count=9), replay(metric(interval="5s", count=9), [F]), T0) is None


@settings(max_examples=200, deadline=None)
@given(
    phases=st.lists(st.sampled_from([S, F, N, E]), max_size=40),
    failure_limit=st.integers(0, 3),
    inconclusive_limit=st.integers(0, 3),
    error_limit=st.integers(0, 3),
    count=st.integers(1, 20),
)
def test_a_restart_resumes_with_the_same_counts_and_schedule(
    phases: list[Phase], failure_limit: int, inconclusive_limit: int, error_limit: int, count: int
) -> None:
    """Whatever happened, the state read back from the status is the state written: same phase,
    same counters, same next measurement. And a final metric is never measured again."""
    spec = metric(
        interval="10s",
        count=count,
        failureLimit=failure_limit,
        inconclusiveLimit=inconclusive_limit,
        consecutiveErrorLimit=error_limit,
    )
    state = MetricState(spec.name)
    for i, phase in enumerate(phases):
        if due(spec, state, T0) is None:
            break
        state = record(spec, state, measured(phase, i * 10))
    reread = MetricState.from_status(state.to_status())
    assert reread == state
    assert due(spec, reread, T0) == due(spec, state, T0)
    assert state.failed <= failure_limit + 1
    assert state.inconclusive <= inconclusive_limit + 1
    if state.phase is Phase.SUCCESSFUL:
        assert (state.count, state.failed <= failure_limit) == (count, True)


# --- a run of several metrics -------------------------------------------------------------------


def test_the_worst_metric_decides_the_run() -> None:
    metrics = {"a": metric(name="a", interval="10s", count=2), "b": metric(name="b")}
    run = Run(AnalysisKind.STEP, "abc", ("t",), T0, step_index=1)
    running = conclude(run, metrics, at(1))
    assert (running.phase, running.finished_at) == (Phase.RUNNING, None)

    run = Run(
        AnalysisKind.STEP,
        "abc",
        ("t",),
        T0,
        step_index=1,
        metrics=(replay(metrics["a"], [S]), replay(metrics["b"], [F])),
    )
    failed = conclude(run, metrics, at(20))
    assert failed.phase is Phase.FAILED
    assert failed.finished_at == at(20)
    assert failed.message.startswith("step 1 analysis: metric b failed: 1 failed (failureLimit 0)")
    assert "last: value [0.01], m" in failed.message


def test_a_run_succeeds_when_every_metric_does_and_says_what_was_measured() -> None:
    metrics = {"a": metric(name="a"), "b": metric(name="b")}
    run = Run(
        AnalysisKind.BACKGROUND,
        "abc",
        ("t",),
        T0,
        metrics=(replay(metrics["a"], [S]), replay(metrics["b"], [S])),
    )
    done = conclude(run, metrics, at(5))
    assert done.phase is Phase.SUCCESSFUL
    assert "metric a: 1 of 1 successful; last: value [0.01]" in done.message


def test_an_erroring_run_is_not_final_and_recovers() -> None:
    spec = metric(interval="10s", count=3, consecutiveErrorLimit=0)
    metrics = {spec.name: spec}
    run = Run(AnalysisKind.STEP, "abc", ("t",), T0, 0, metrics=(replay(spec, [E]),))
    erroring = conclude(run, metrics, at(1))
    assert (erroring.phase, erroring.final) == (Phase.ERROR, False)
    recovered = conclude(
        Run(AnalysisKind.STEP, "abc", ("t",), T0, 0, metrics=(replay(spec, [E, S]),)), metrics, at(2)
    )
    assert recovered.phase is Phase.RUNNING


def test_runs_round_trip_through_the_status_model() -> None:
    spec = metric(interval="10s", count=3)
    run = Run(
        AnalysisKind.STEP,
        "abc",
        ("error-rate", "latency"),
        T0,
        step_index=2,
        metrics=(replay(spec, [S, E]),),
    )
    run = conclude(run, {spec.name: spec}, at(30))
    status = {"analysisHistory": [run.to_status()]}
    RolloutStatus.model_validate(status)  # the CRD's schema accepts it
    assert runs_from_status(status) == (run,)


# --- starting and stopping ----------------------------------------------------------------------

STEP = Wanted(AnalysisKind.STEP, "abc", ("t",), 1)
BACKGROUND = Wanted(AnalysisKind.BACKGROUND, "abc", ("t",))
STEP_NINE = Wanted(AnalysisKind.STEP, "abc", ("t",), 9)


def test_a_wanted_run_starts_once() -> None:
    runs = lifecycle((), (STEP,), T0)
    assert [(r.key, r.started_at, r.phase) for r in runs] == [(STEP.key, T0, Phase.RUNNING)]
    assert lifecycle(runs, (STEP,), at(5)) == runs


def test_a_run_no_longer_wanted_is_stopped_and_kept() -> None:
    runs = lifecycle((), (STEP, BACKGROUND), T0)
    after = lifecycle(runs, (BACKGROUND,), at(5))
    stopped = after[0]
    assert (stopped.phase, stopped.finished_at) == (Phase.SUCCESSFUL, at(5))
    assert "stopped (no longer needed)" in stopped.message
    assert after[1] == runs[1]


def test_an_erroring_run_stopped_counts_as_inconclusive() -> None:
    run = Run(AnalysisKind.STEP, "abc", ("t",), T0, 1, phase=Phase.ERROR, message="step 1 analysis: down")
    assert stop(run, at(1), "aborted").phase is Phase.INCONCLUSIVE


def test_a_person_promoting_restarts_an_undecided_background_run_and_accepts_others() -> None:
    background = Run(AnalysisKind.BACKGROUND, "abc", ("t",), T0, phase=Phase.INCONCLUSIVE, finished_at=at(1))
    post = Run(AnalysisKind.POST_PROMOTION, "abc", ("t",), T0, phase=Phase.ERROR)
    post_wanted = Wanted(AnalysisKind.POST_PROMOTION, "abc", ("t",))
    runs = lifecycle((background, post), (BACKGROUND, post_wanted), at(9), promoted_by_person=True)
    assert runs[0] == background  # kept as it was, for the record
    assert runs[1].phase is Phase.SUCCESSFUL
    assert "accepted by a person" in runs[1].message
    assert (runs[2].key, runs[2].phase, runs[2].started_at) == (BACKGROUND.key, Phase.RUNNING, at(9))


def test_the_history_is_bounded_and_drops_the_oldest_finished_first() -> None:
    finished = tuple(
        Run(AnalysisKind.STEP, "abc", ("t",), at(i), i, phase=Phase.SUCCESSFUL, finished_at=at(i))
        for i in range(ANALYSIS_HISTORY_LIMIT)
    )
    runs = lifecycle(finished, (BACKGROUND,), at(100))
    assert len(runs) == ANALYSIS_HISTORY_LIMIT
    assert runs[0].step_index == 1  # step 0's run was dropped
    assert runs[-1].key == BACKGROUND.key


def test_notable_measurements_have_one_event_each_even_after_a_restart() -> None:
    spec = metric(interval="10s", count=5, consecutiveErrorLimit=3)
    run = Run(AnalysisKind.STEP, "abc", ("t",), T0, 1)
    taken = []
    state = MetricState(spec.name)
    for i, phase in enumerate([S, F, E, E, N]):
        measurement = measured(phase, i * 10)
        state = record(spec, state, measurement)
        taken.append(Taken(run, state, measurement))
    assert [t.notable for t in taken] == [False, True, True, False, True]  # one Event per error streak
    assert len({t.sequence for t in taken}) == len(taken)
    again = Taken(run, MetricState.from_status(state.to_status()), taken[-1].measurement)
    assert again.sequence == taken[-1].sequence  # recorded again after a restart: the same Event
    assert all(t.sequence >= EVENT_SEQUENCES for t in taken)  # never a transition's number
    reason, message = MEASURED[taken[1].measurement.phase], taken[1].message()  # the Event's
    assert reason is Reason.MEASUREMENT_FAILED
    assert (
        message == "step 1 analysis: metric error-rate: value [0.01]: m (1 failed, 0 inconclusive, 2 taken)"
    )


def test_the_history_stays_within_its_share_of_the_status_however_big_the_templates() -> None:
    """128 metrics with every text at its longest: still far below etcd's 1.5 MiB."""
    spec = metric(interval="1s")
    long = Measurement(Phase.SUCCESSFUL, T0, "v" * VALUE_LENGTH, "m" * MESSAGE_LENGTH)
    states = tuple(
        MetricState(f"m{i}", message="m" * MESSAGE_LENGTH, count=5, measurements=(long,) * 5)
        for i in range(128)
    )
    finished = tuple(
        Run(AnalysisKind.STEP, "abc", ("t",), at(i), i, Phase.SUCCESSFUL, "m" * 1024, at(i), states)
        for i in range(ANALYSIS_HISTORY_LIMIT - 1)
    )
    running = Run(AnalysisKind.BACKGROUND, "abc", ("t",), T0, metrics=states)
    runs = lifecycle((*finished, running), (BACKGROUND,), at(100))
    assert len(json.dumps([run.to_status() for run in runs])) <= HISTORY_BYTES
    assert runs[-1].key == BACKGROUND.key  # the running analysis is never dropped
    step = Run(AnalysisKind.STEP, "abc", ("t",), T0, 9, metrics=states)
    both = lifecycle((*finished, running, step), (BACKGROUND, STEP_NINE), at(100))
    assert len(json.dumps([run.to_status() for run in both])) <= 1024 * 1024
    assert [run.key for run in both if not run.final] == [BACKGROUND.key, STEP_NINE.key]
    assert due(spec, runs[-1].metric("m0"), T0) == due(spec, running.metric("m0"), T0)  # nor its schedule
    assert runs[-1].metric("m0").count == 5


def test_a_typical_history_keeps_every_latest_measurement() -> None:
    spec = metric(interval="10s", count=5)
    done = Run(AnalysisKind.STEP, "abc", ("t",), T0, 1, metrics=(replay(spec, [S] * 5),))
    done = conclude(done, {spec.name: spec}, at(60))
    assert lifecycle((done,), (), at(61))[0].metrics[0].measurements == done.metrics[0].measurements
