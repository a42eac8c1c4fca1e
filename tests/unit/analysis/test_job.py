"""The job provider's pure parts: the Job's name and body, what a Job says of its measurement,
and which Jobs cleanup deletes."""

from __future__ import annotations

import datetime
from typing import Any

from delivery.analysis import job
from delivery.analysis.runner import Phase, Run
from delivery.api.analysis import Job, JobMetadata
from delivery.api.rollout import AnalysisKind

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
RUN = Run(AnalysisKind.STEP, "abc123", ("smoke",), T0, 1)
ROLLOUT = {
    "apiVersion": "delivery.luojilab.com/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
}


def test_a_jobs_name_is_readable_unique_and_short_enough_for_its_pods_label() -> None:
    name = job.job_name("web", "u-1", RUN, "smoke", 1)
    assert name.startswith("web-smoke-")
    assert name.endswith("-1")
    assert name == job.job_name("web", "u-1", RUN, "smoke", 1)  # after a restart: the same Job
    others = {
        job.job_name("web", "u-1", RUN, "smoke", 2),
        job.job_name("web", "u-2", RUN, "smoke", 1),  # a Rollout made again under the same name
        job.job_name("web", "u-1", Run(AnalysisKind.STEP, "abc123", ("smoke",), T0, 3), "smoke", 1),
        job.job_name("web", "u-1", RUN, "other", 1),
    }
    assert name not in others
    assert len(others) == 4
    long = job.job_name("a" * 60, "u", RUN, "Very_Long.Metric" * 4, 10000)
    assert len(long) <= 63
    assert long.endswith("-10000")
    assert all(c.islower() or c.isdigit() or c == "-" for c in long)


def test_the_body_is_owned_by_the_rollout_and_labelled_for_cleanup() -> None:
    spec = Job(metadata=JobMetadata(labels={"team": "a"}, annotations={"x": "1"}), spec={"backoffLimit": 0})
    extra = JobMetadata(labels={"my-custom-label": "v", job.JOB_LABEL: "not-this"})
    body = job.Planned(spec, "web-smoke-1", ROLLOUT, RUN, "smoke", extra).body()
    metadata = body["metadata"]
    assert metadata["namespace"] == "shop"
    assert metadata["labels"] == {"team": "a", "my-custom-label": "v", job.JOB_LABEL: "web"}
    assert metadata["annotations"][job.RUN_ANNOTATION] == job.run_id(RUN)
    assert metadata["annotations"]["x"] == "1"
    assert metadata["ownerReferences"][0]["uid"] == "u-1"
    assert metadata["ownerReferences"][0]["controller"] is True
    assert body["spec"] == {"backoffLimit": 0}


def a_job(
    name: str, *conditions: dict[str, str], run: Run = RUN, created: str = "2026-01-01T00:00:00Z"
) -> Any:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "creationTimestamp": created,
            "annotations": {job.RUN_ANNOTATION: job.run_id(run)},
        },
        "status": {"conditions": list(conditions)},
    }


COMPLETE = {"type": "Complete", "status": "True"}
FAILED = {
    "type": "Failed",
    "status": "True",
    "reason": "BackoffLimitExceeded",
    "message": "Job has reached the specified backoff limit",
}


def test_a_complete_job_is_a_success_a_failed_one_a_failure_with_its_reasons() -> None:
    assert job.outcome(a_job("j", COMPLETE)) == (Phase.SUCCESSFUL, "Job j completed")
    pod = {
        "metadata": {"name": "j-x"},
        "status": {
            "containerStatuses": [
                {
                    "name": "test",
                    "state": {"terminated": {"exitCode": 3, "reason": "Error", "message": "3 failed\n"}},
                }
            ]
        },
    }
    phase, message = job.outcome(a_job("j", FAILED), [pod]) or (None, "")
    assert phase is Phase.FAILED
    assert message == (
        "Job j failed: BackoffLimitExceeded: Job has reached the specified backoff limit; "
        "pod j-x container test exited 3 (Error): 3 failed"
    )


def test_a_running_job_says_nothing_yet() -> None:
    assert job.outcome(a_job("j")) is None
    assert job.outcome(a_job("j", {"type": "Failed", "status": "False"})) is None
    assert job.outcome(a_job("j", {"type": "FailureTarget", "status": "True"})) is None


def test_cleanup_deletes_running_jobs_of_ended_runs_and_old_finished_ones() -> None:
    ended = Run(AnalysisKind.STEP, "abc123", ("smoke",), T0, 0, phase=Phase.FAILED)
    running = [a_job("running-now"), a_job("running-ended", run=ended)]
    finished = [a_job(f"done-{i}", COMPLETE, created=f"2026-01-01T00:00:{i:02d}Z") for i in range(7)]
    deleted = {j["metadata"]["name"] for j in job.stale([*running, *finished], [RUN, ended])}
    assert deleted == {"running-ended", "done-0", "done-1"}


def test_when_every_run_has_ended_no_job_is_left_running() -> None:
    ended = Run(AnalysisKind.STEP, "abc123", ("smoke",), T0, 1, phase=Phase.SUCCESSFUL)
    assert [j["metadata"]["name"] for j in job.stale([a_job("j"), a_job("k", COMPLETE)], [ended])] == ["j"]
