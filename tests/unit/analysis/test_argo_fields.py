"""Argo Rollouts' analysis fields: parsed as Argo writes them, and the pure decisions they drive
(dry-run metrics, measurement retention, consecutive successes with and without a count)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from delivery.analysis.run import Resolved, Subject, _argument
from delivery.analysis.runner import (
    Measurement,
    MetricState,
    Phase,
    Policy,
    Run,
    conclude,
    record,
    stop,
)
from delivery.analysis.templates import TemplateProblem
from delivery.api.analysis import AnalysisTemplate, DryRun, MeasurementRetention, Metric, WebHeader
from delivery.api.rollout import (
    MEASUREMENT_HISTORY_LIMIT,
    MEASUREMENT_RETENTION_LIMIT,
    AnalysisArgument,
    AnalysisKind,
    RolloutAnalysis,
)

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def metric(name: str = "rate", **fields: Any) -> Metric:
    wire = {
        "name": name,
        "provider": {"prometheus": {"query": "q"}},
        "successCondition": "result > 1",
        **fields,
    }
    return Metric.model_validate(wire)


def measurements(m: Metric, phases: str, keep: int = MEASUREMENT_HISTORY_LIMIT) -> MetricState:
    """`phases` as letters: S successful, F failed, I inconclusive, E error."""
    letters = {"S": Phase.SUCCESSFUL, "F": Phase.FAILED, "I": Phase.INCONCLUSIVE, "E": Phase.ERROR}
    state = MetricState(m.name)
    for index, letter in enumerate(phases):
        state = record(m, state, Measurement(letters[letter], at(index), "1", "m"), keep)
    return state


# --- the manifest as Argo's documentation writes it ----------------------------------------------

ARGO_TEMPLATE = {
    "apiVersion": "delivery.luojilab.com/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "args-example"},
    "spec": {
        "args": [
            {"name": "service-name"},
            {"name": "api-url", "value": "http://example/measure"},
            {"name": "api-token", "valueFrom": {"secretKeyRef": {"name": "token-secret", "key": "apiToken"}}},
        ],
        "dryRun": [{"metricName": "total-5xx-errors"}],
        "measurementRetention": [{"metricName": ".*", "limit": 20}],
        "metrics": [
            {
                "name": "webmetric",
                "successCondition": "result == 'true'",
                "consecutiveSuccessLimit": 3,
                "failureLimit": -1,
                "interval": "5s",
                "provider": {
                    "web": {
                        "url": "{{ args.api-url }}?service={{ args.service-name }}",
                        "headers": [{"key": "Authorization", "value": "Bearer {{ args.api-token }}"}],
                        "jsonPath": "{$.results.ok}",
                    }
                },
            },
            {
                "name": "integration-test",
                "provider": {
                    "job": {
                        "metadata": {"labels": {"team": "a"}},
                        "spec": {
                            "backoffLimit": 1,
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "test", "image": "busybox"}],
                                }
                            },
                        },
                    }
                },
            },
        ],
    },
}


def test_an_argo_template_with_only_its_api_version_changed_is_valid() -> None:
    template = AnalysisTemplate.model_validate(ARGO_TEMPLATE)
    web, job = template.spec.metrics
    assert web.consecutive_success_limit == 3
    assert web.failure_limit == -1
    assert web.provider.web is not None
    assert [h.header for h in web.provider.web.headers or ()] == ["Authorization"]
    assert job.provider.job is not None
    assert job.provider.job.spec["backoffLimit"] == 1
    assert template.spec.args is not None
    assert template.spec.args[2].value_from is not None
    assert template.spec.args[2].value_from.secret_key_ref.key == "apiToken"


def test_a_header_is_named_by_key_or_name_never_both_or_neither() -> None:
    assert WebHeader.model_validate({"name": "X-Team", "value": "a"}).header == "X-Team"
    assert WebHeader.model_validate({"key": "X-Team", "value": "a"}).header == "X-Team"
    for wrong in ({"value": "a"}, {"key": "A", "name": "A", "value": "a"}):
        with pytest.raises(ValidationError, match="exactly one of key or name"):
            WebHeader.model_validate(wrong)


def test_failure_limit_minus_one_needs_a_consecutive_success_limit() -> None:
    with pytest.raises(ValidationError, match="nothing could end the metric"):
        metric(failureLimit=-1)
    with pytest.raises(ValidationError):
        metric(failureLimit=-2, consecutiveSuccessLimit=1)


def test_a_job_metric_needs_no_condition_a_prometheus_one_does() -> None:
    job = {"name": "j", "provider": {"job": {"spec": {"template": {}}}}}
    assert Metric.model_validate(job).provider.job is not None
    with pytest.raises(ValidationError, match="successCondition or failureCondition is required"):
        Metric.model_validate({"name": "p", "provider": {"prometheus": {"query": "q"}}})


def test_a_metric_name_pattern_that_does_not_compile_is_refused() -> None:
    with pytest.raises(ValidationError, match="metricName"):
        DryRun.model_validate({"metricName": "(unclosed"})


def test_rollout_arguments_take_a_value_or_one_value_from() -> None:
    AnalysisArgument.model_validate({"name": "a", "valueFrom": {"podTemplateHashValue": "Stable"}})
    AnalysisArgument.model_validate({"name": "a", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    for wrong in (
        {"name": "a"},
        {"name": "a", "value": "x", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "a", "valueFrom": {}},
        {"name": "a", "valueFrom": {"podTemplateHashValue": "Newest"}},
    ):
        with pytest.raises(ValidationError):
            AnalysisArgument.model_validate(wrong)


# --- valueFrom on the Rollout --------------------------------------------------------------------

ROLLOUT = {
    "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web", "env": "dev"}},
    "spec": {"replicas": 3, "template": {"metadata": {"labels": {"version": "1"}}}},
    "status": {"paused": False},
}
SUBJECT = Subject("shop", {"stable-hash": "old111", "canary-hash": "new222"}, ROLLOUT)


@pytest.mark.parametrize(
    ("value_from", "expected"),
    [
        ({"podTemplateHashValue": "Stable"}, "old111"),
        ({"podTemplateHashValue": "Latest"}, "new222"),
        ({"fieldRef": {"fieldPath": "metadata.labels['env']"}}, "dev"),
        ({"fieldRef": {"fieldPath": "metadata.labels['app.kubernetes.io/name']"}}, "web"),
        ({"fieldRef": {"fieldPath": "spec.template.metadata.labels.version"}}, "1"),
        ({"fieldRef": {"fieldPath": "spec.replicas"}}, "3"),
        ({"fieldRef": {"fieldPath": "status.paused"}}, "false"),
    ],
)
def test_an_argument_from_the_rollout_reads_it_as_argo_does(
    value_from: dict[str, Any], expected: str
) -> None:
    argument = AnalysisArgument.model_validate({"name": "a", "valueFrom": value_from})
    assert _argument(argument, SUBJECT) == expected


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("metadata.labels['region']", "not found in the Rollout"),
        ("spec.template", "string, number or boolean"),
    ],
)
def test_a_field_ref_to_nothing_or_to_an_object_is_a_template_problem(path: str, said: str) -> None:
    argument = AnalysisArgument.model_validate({"name": "a", "valueFrom": {"fieldRef": {"fieldPath": path}}})
    with pytest.raises(TemplateProblem, match=said):
        _argument(argument, SUBJECT)


def test_a_secret_value_never_shows_in_a_message() -> None:
    resolved = Resolved({}, secrets=("s3cret", ""))
    assert resolved.redacted("GET http://x/?token=s3cret failed") == "GET http://x/?token=*** failed"


# --- consecutiveSuccessLimit ---------------------------------------------------------------------


def test_consecutive_successes_end_the_metric_at_once() -> None:
    m = metric(interval="1s", consecutiveSuccessLimit=3, failureLimit=-1)
    assert measurements(m, "SSFSS").phase is Phase.RUNNING
    done = measurements(m, "SSFSSS")
    assert done.phase is Phase.SUCCESSFUL
    assert done.consecutive_success == 3
    assert "3 successful in a row" in done.message


def test_errors_and_inconclusives_break_the_streak_too() -> None:
    m = metric(interval="1s", consecutiveSuccessLimit=2, failureLimit=-1, inconclusiveLimit=5)
    assert measurements(m, "SES").consecutive_success == 1
    assert measurements(m, "SIS").phase is Phase.RUNNING


def test_failure_limit_wins_over_the_streak() -> None:
    m = metric(interval="1s", consecutiveSuccessLimit=3, failureLimit=1)
    assert measurements(m, "SFSF").phase is Phase.FAILED


@pytest.mark.parametrize(
    ("failure_limit", "phases", "phase"),
    [
        (1, "SFSS", Phase.SUCCESSFUL),  # both applicable, the streak reached at the count
        (1, "SSFS", Phase.INCONCLUSIVE),  # both applicable, the count reached first
        (-1, "SSFS", Phase.FAILED),  # only the streak applicable, the count reached first
        (0, "SSSF", Phase.FAILED),  # the failure limit violated
    ],
)
def test_with_a_count_the_outcome_follows_argos_table(failure_limit: int, phases: str, phase: Phase) -> None:
    m = metric(
        interval="1s",
        count=4,
        consecutiveSuccessLimit=2 if phases == "SFSS" else 3,
        failureLimit=failure_limit,
    )
    assert measurements(m, phases).phase is phase


def test_without_a_streak_the_count_decides_as_before() -> None:
    m = metric(interval="1s", count=3, failureLimit=1)
    assert measurements(m, "SFS").phase is Phase.SUCCESSFUL


# --- measurementRetention ------------------------------------------------------------------------


def test_retention_keeps_the_latest_measurements_the_counters_all() -> None:
    m = metric(interval="1s")
    state = measurements(m, "S" * 30, keep=20)
    assert len(state.measurements) == 20
    assert state.measurements[-1].at == at(29)
    assert state.count == 30


def test_retention_policy_matches_as_argo_searches_and_the_rollouts_wins() -> None:
    policy = Policy(
        retention=(
            MeasurementRetention(metric_name=".*", limit=20),
            MeasurementRetention(metric_name="5xx", limit=1000),
            MeasurementRetention(metric_name="4xx", limit=0),
        )
    )
    assert policy.keep("total-5xx-errors") == MEASUREMENT_RETENTION_LIMIT  # bounded
    assert policy.keep("total-4xx-errors") == 20  # 0 says nothing
    assert policy.keep("latency") == 20
    assert Policy().keep("latency") == MEASUREMENT_HISTORY_LIMIT


# --- dryRun --------------------------------------------------------------------------------------


def run_of(**states: MetricState) -> Run:
    return Run(AnalysisKind.STEP, "new", ("t",), T0, 0, metrics=tuple(states.values()))


def test_a_failing_dry_run_metric_never_fails_the_run_and_is_reported() -> None:
    rate, errors = metric("rate"), metric("errors-5xx")
    metrics = {"rate": rate, "errors-5xx": errors}
    policy = Policy(dry_run=(DryRun(metric_name="5xx"),))
    run = conclude(
        run_of(rate=measurements(rate, "S"), errors=measurements(errors, "F")), metrics, at(5), policy
    )
    assert run.phase is Phase.SUCCESSFUL
    assert "dry run: metric errors-5xx failed" in run.message
    assert run.metric("errors-5xx").dry_run
    assert run.metric("errors-5xx").to_status()["dryRun"] is True
    assert "dryRun" not in run.metric("rate").to_status()


def test_the_run_waits_for_its_dry_run_metrics_to_end() -> None:
    rate, errors = metric("rate"), metric("errors", interval="1s", count=3, failureLimit=5)
    metrics = {"rate": rate, "errors": errors}
    policy = Policy(dry_run=(DryRun(metric_name=".*rr"),))
    run = conclude(
        run_of(rate=measurements(rate, "S"), errors=measurements(errors, "F")), metrics, at(5), policy
    )
    assert run.phase is Phase.RUNNING


def test_every_metric_in_dry_run_mode_still_ends_the_run() -> None:
    rate = metric("rate")
    run = conclude(
        run_of(rate=measurements(rate, "F")), {"rate": rate}, at(5), Policy((DryRun(metric_name=".*"),))
    )
    assert run.phase is Phase.SUCCESSFUL
    assert "every metric in dry-run mode" in run.message


def test_without_dry_run_the_failure_fails_the_run() -> None:
    rate, errors = metric("rate"), metric("errors")
    metrics = {"rate": rate, "errors": errors}
    run = conclude(run_of(rate=measurements(rate, "S"), errors=measurements(errors, "F")), metrics, at(5))
    assert run.phase is Phase.FAILED


def test_a_stopped_run_is_not_inconclusive_for_a_dry_run_metric() -> None:
    rate = metric("rate", interval="1s")
    maybe = metric("maybe", failureCondition="result > 5")  # with a success condition: inconclusive
    metrics = {"rate": rate, "maybe": maybe}
    policy = Policy(dry_run=(DryRun(metric_name="maybe"),))
    running = conclude(
        run_of(rate=measurements(rate, "S"), maybe=measurements(maybe, "I")), metrics, at(5), policy
    )
    assert running.phase is Phase.RUNNING
    assert stop(running, at(6), "the step ended").phase is Phase.SUCCESSFUL


def test_a_rollouts_analysis_takes_argos_dry_run_retention_and_metadata() -> None:
    analysis = RolloutAnalysis.model_validate(
        {
            "templates": [{"templateName": "random-fail"}],
            "dryRun": [{"metricName": ".*"}],
            "measurementRetention": [{"metricName": ".*", "limit": 20}],
            "analysisRunMetadata": {"labels": {"my-custom-label": "v"}, "annotations": {"a": "b"}},
        }
    )
    assert analysis.analysis_run_metadata is not None
    assert analysis.analysis_run_metadata.labels == {"my-custom-label": "v"}
