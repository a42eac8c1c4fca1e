"""The `job` metric provider on the sandbox: the real Job controller runs each measurement's Job,
kwok ends its pod as the pod's annotation says (`sandbox/kwok/job-pods.yaml`). A Job that completes
promotes the canary; one that fails aborts it with the Job's and its pod's reasons in the
measurement; an abort while a Job runs deletes that Job and its pod; a controller killed while its
Job runs takes that same Job's outcome after its restart, never creating a second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from delivery.analysis.job import JOB_LABEL, RUN_ANNOTATION
from delivery.machine import Reason
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests import analysis_egress
from tests.controller import Controller
from tests.rollouts import ABORT, apply, events, in_shard, rollout, wait_for
from tests.waiting import eventually

OUTCOME = "sandbox.delivery.luojilab.com/pod-outcome"


def template(namespace: str, outcome: str | None) -> dict[str, Any]:
    """An AnalysisTemplate with one job metric, as Argo Rollouts' documentation writes one."""
    pod_metadata = {"annotations": {OUTCOME: outcome}} if outcome else {}
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "smoke", "namespace": namespace},
        "spec": {
            "args": [{"name": "service"}],
            "metrics": [
                {
                    "name": "smoke-test",
                    "provider": {
                        "job": {
                            "metadata": {"labels": {"team": "web"}},
                            "spec": {
                                "backoffLimit": 0,
                                "template": {
                                    "metadata": pod_metadata,
                                    "spec": {
                                        "restartPolicy": "Never",
                                        "containers": [
                                            {
                                                "name": "test",
                                                "image": "curlimages/curl",
                                                "command": ["curl", "-f", "http://{{args.service}}/health"],
                                            }
                                        ],
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


STRATEGY = {
    "canary": {
        "steps": [
            {"setWeight": 50},
            {
                "analysis": {
                    "templates": [{"templateName": "smoke"}],
                    "args": [{"name": "service", "value": "web-canary"}],
                    "analysisRunMetadata": {"labels": {"release": "web"}},
                }
            },
        ],
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
    }
}


def jobs(sandbox: Sandbox, namespace: str) -> list[dict[str, Any]]:
    listed = sandbox.kubectl_run("get", "jobs", "-n", namespace, "-l", JOB_LABEL, "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def job_pods(sandbox: Sandbox, namespace: str) -> list[dict[str, Any]]:
    listed = sandbox.kubectl_run(
        "get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def released(sandbox: Sandbox, namespace: str, outcome: str | None, shard: str = "") -> dict[str, Any]:
    """A Rollout at web:1, then web:2 applied (in `shard`, if given): its second revision's body."""

    def made(image: str) -> dict[str, Any]:
        body = rollout("web", namespace, image, STRATEGY, replicas=2)
        return in_shard(body, shard) if shard else body

    apply(sandbox, template(namespace, outcome), made("web:1"))
    wait_for(sandbox, "web", namespace, phase="Healthy")
    second = made("web:2")
    apply(sandbox, second)
    return second


def running_job(sandbox: Sandbox, namespace: str) -> dict[str, Any]:
    found = eventually(
        lambda: [j for j in jobs(sandbox, namespace) if (j.get("status") or {}).get("active")] or None,
        timeout=60,
        what="the analysis Job running",
    )
    (job,) = found
    return job


@pytest.mark.matrix
def test_a_job_that_completes_promotes_the_canary(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    second = released(sandbox, namespace, None)
    promoted = wait_for(
        sandbox,
        "web",
        namespace,
        120,
        phase="Healthy",
        stableRevision=template_hash(second["spec"]["template"]),
    )
    metric = promoted["analysisHistory"][-1]["metrics"][0]
    assert (metric["phase"], metric["count"], metric["successful"]) == ("Successful", 1, 1)
    (made,) = jobs(sandbox, namespace)
    assert metric["measurements"][-1]["message"] == f"Job {made['metadata']['name']} completed"
    owner = made["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Rollout", "web")
    labels = made["metadata"]["labels"]
    assert (labels[JOB_LABEL], labels["team"], labels["release"]) == ("web", "web", "web")
    command = made["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command == ["curl", "-f", "http://web-canary/health"]  # the argument filled in


def test_a_job_that_fails_aborts_the_canary_and_says_why(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    released(sandbox, namespace, "failed")
    aborted = wait_for(sandbox, "web", namespace, 120, phase="Aborted", state="aborted")
    measurement = aborted["analysisHistory"][-1]["metrics"][0]["measurements"][-1]
    assert measurement["phase"] == "Failed"
    assert "failed: BackoffLimitExceeded" in measurement["message"]
    assert "container test exited 1 (Error)" in measurement["message"]
    message = dict(events(sandbox, "web", namespace))[Reason.ANALYSIS_FAILED]
    assert "metric smoke-test failed" in message
    assert "BackoffLimitExceeded" in message
    assert len(jobs(sandbox, namespace)) == 1  # finished: kept (up to a few) for its logs


def test_an_abort_while_the_job_runs_deletes_it_and_its_pod(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    released(sandbox, namespace, "running")
    assert running_job(sandbox, namespace)["metadata"]["annotations"][RUN_ANNOTATION].startswith("Step/")
    eventually(lambda: job_pods(sandbox, namespace) or None, timeout=60, what="the Job's pod")
    status = wait_for(sandbox, "web", namespace, 30, state="analysing")
    assert all(metric["count"] == 0 for metric in status["analysisHistory"][-1]["metrics"])  # in progress

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{ABORT}=true")
    wait_for(sandbox, "web", namespace, 60, phase="Aborted", state="aborted")
    eventually(lambda: not jobs(sandbox, namespace), timeout=60, what="the running Job deleted")
    eventually(lambda: not job_pods(sandbox, namespace), timeout=60, what="its pod deleted with it")


@pytest.mark.faults
def test_a_controller_killed_while_its_job_runs_takes_that_jobs_outcome_after_restart(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    shard = "jobs"
    own = Controller.of_shard(
        sandbox, tmp_path / "delivery.log", shard, analysis_egress.FLAG, namespace=namespace
    )
    own.start()
    try:
        released(sandbox, namespace, "running", shard)
        job = running_job(sandbox, namespace)
        own.kill()
        own.start()
        # The pod fails now: only the restarted controller can record it, from the Job it finds.
        (pod,) = eventually(lambda: job_pods(sandbox, namespace) or None, timeout=60, what="the Job's pod")
        name = pod["metadata"]["name"]
        sandbox.kubectl_run("annotate", "pod", name, "-n", namespace, f"{OUTCOME}=failed", "--overwrite")
        aborted = wait_for(sandbox, "web", namespace, 120, phase="Aborted", state="aborted")
    finally:
        own.stop()
    metric = aborted["analysisHistory"][-1]["metrics"][0]
    assert (metric["count"], metric["failed"]) == (1, 1)  # one measurement, taken once
    assert job["metadata"]["name"] in metric["measurements"][-1]["message"]
    (after,) = jobs(sandbox, namespace)  # the same Job, never a second
    assert after["metadata"]["uid"] == job["metadata"]["uid"]
