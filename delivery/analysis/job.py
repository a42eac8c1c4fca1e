"""The `job` provider: a Kubernetes Job per measurement, whose completion is the measurement.

As in Argo Rollouts: the Job completes, the measurement is Successful; it fails (its pods used up
`backoffLimit`, or its `activeDeadlineSeconds` passed), the measurement is Failed, with the Job's
reason and its pod's exit in the message; the apiserver refuses the Job (an invalid spec, no
permission), the measurement is an Error, retried like any provider's error.

A Job takes its time, and a reconcile must not wait for it: the measurement that is due creates
the Job and is *in progress* (nothing is recorded), and each later reconcile looks at the Job again
until it has finished, then records the measurement. The Job's name is a function of the Rollout
(name and uid), the run, the metric and the measurement's number (its count plus its errors, plus
one), so a controller killed after creating a Job finds that same Job again instead of creating a
second, and a measurement recorded after a restart is never taken twice.

Each Job is owned by the Rollout (deleted with it) and labelled with its name (`JOB_LABEL`), which
the controller's Job informer selects on server side, so a Job's completion reconciles its Rollout
at once. Cleanup is level-based (`stale`, pure): a Job still running for a run that has ended (an
abort, a step the release left) is deleted, pods too (propagationPolicy Background); of the
finished ones the newest `FINISHED_KEPT` are kept, for `kubectl logs`, and the older deleted.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from delivery.analysis.provider import Unmeasurable
from delivery.analysis.runner import Measurement, Phase, Run
from delivery.api.analysis import Job, JobMetadata
from delivery.kube import shard
from delivery.kube.api import Kube, KubeError, Object
from delivery.kube.kinds import JOB, POD

JOB_LABEL = "delivery.luojilab.com/analysis-of"
"""On each Job of an analysis: the name of the Rollout it measures for."""
RUN_ANNOTATION = "delivery.luojilab.com/analysis-run"
"""The run a Job measures for (`run_id`): a Job of a run that has ended is deleted if still running."""
METRIC_ANNOTATION = "delivery.luojilab.com/analysis-metric"
FINISHED_KEPT = 5
"""Finished Jobs kept per Rollout (the newest), so their pods' logs can still be read."""
POLL = 10.0
"""Seconds between looks at a running Job, should its informer event be late."""
NAME_LENGTH = 63  # a Job's name goes into its pods' `job-name` label, whose value has at most 63
POD_JOB_LABEL = "batch.kubernetes.io/job-name"


def run_id(run: Run) -> str:
    """The run, as a Job's annotation names it: a run started again is another run."""
    started = run.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    step = "" if run.step_index is None else run.step_index
    named = "" if run.analysis is None else f"/{run.analysis}"  # an experiment's analyses share a step
    return f"{run.kind.value}/{run.revision}/{step}/{started}{named}"


def job_name(rollout: str, uid: str, run: Run, metric: str, number: int) -> str:
    """The Job of measurement `number` of `metric` in `run`: readable (Rollout and metric first),
    unique by a digest of what identifies it, and at most 63 characters."""
    digest = hashlib.sha256(f"{uid}/{run_id(run)}/{metric}".encode()).hexdigest()[:8]
    suffix = f"-{digest}-{number}"
    readable = re.sub(r"[^a-z0-9-]+", "-", f"{rollout}-{metric}".lower()).strip("-")
    return readable[: NAME_LENGTH - len(suffix)].rstrip("-") + suffix


@dataclass(frozen=True)
class Planned:
    """One measurement's Job: what it runs, its name, who owns it, what it measures for."""

    spec: Job
    name: str
    rollout: Mapping[str, Any]
    run: Run
    metric: str
    extra: JobMetadata | None = None
    """The Rollout's `analysisRunMetadata`."""

    @property
    def namespace(self) -> str:
        namespace: str = self.rollout["metadata"]["namespace"]
        return namespace

    def body(self) -> Object:
        """The Job to create: the template's metadata and the Rollout's `analysisRunMetadata`
        merged (ours last, so cleanup always finds it), owned by the Rollout."""
        metadata = self.rollout["metadata"]
        labels: dict[str, str] = {}
        annotations: dict[str, str] = {}
        for given in (self.spec.metadata, self.extra):
            if given is not None:
                labels.update(given.labels or {})
                annotations.update(given.annotations or {})
        labels[JOB_LABEL] = metadata["name"]
        labels = shard.labelled(labels, shard.of(self.rollout))  # watched by its Rollout's shard only
        annotations.update({RUN_ANNOTATION: run_id(self.run), METRIC_ANNOTATION: self.metric})
        owner = {
            "apiVersion": self.rollout["apiVersion"],
            "kind": self.rollout["kind"],
            "name": metadata["name"],
            "uid": metadata["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner],
            },
            "spec": self.spec.spec,
        }


def _condition(job: Object, kind: str) -> Mapping[str, Any] | None:
    conditions = (job.get("status") or {}).get("conditions") or ()
    return next((c for c in conditions if c.get("type") == kind and c.get("status") == "True"), None)


def _exits(pods: Iterable[Object]) -> list[str]:
    """How the pods' containers ended, as people read it: `pod p container c exited 1 (Error): ...`."""
    said = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            ended = (status.get("state") or {}).get("terminated")
            if ended and ended.get("exitCode", 0) != 0:
                text = f"pod {pod['metadata']['name']} container {status['name']} exited {ended['exitCode']}"
                text += f" ({ended['reason']})" if ended.get("reason") else ""
                text += f": {ended['message'].strip()}" if ended.get("message") else ""
                said.append(text)
    return said


def outcome(job: Object, pods: Iterable[Object] = ()) -> tuple[Phase, str] | None:
    """What a Job says of its measurement: Successful, Failed (with its reasons), or None while it runs."""
    name = job["metadata"]["name"]
    if _condition(job, "Complete") is not None:
        return Phase.SUCCESSFUL, f"Job {name} completed"
    failed = _condition(job, "Failed")
    if failed is None:
        return None
    why = ": ".join(part for part in (failed.get("reason"), failed.get("message")) if part)
    return Phase.FAILED, "; ".join([f"Job {name} failed" + (f": {why}" if why else ""), *_exits(pods)])


def finished(job: Object) -> bool:
    return outcome(job) is not None


def stale(jobs: Iterable[Object], runs: Iterable[Run]) -> list[Object]:
    """The Jobs to delete: those still running for a run that is no longer running, and the
    finished ones beyond the newest FINISHED_KEPT."""
    running = {run_id(run) for run in runs if not run.final}
    jobs = sorted(
        jobs, key=lambda job: (job["metadata"].get("creationTimestamp", ""), job["metadata"]["name"])
    )
    done = [job for job in jobs if finished(job)]
    orphaned = [
        job
        for job in jobs
        if not finished(job) and (job["metadata"].get("annotations") or {}).get(RUN_ANNOTATION) not in running
    ]
    return orphaned + done[: max(0, len(done) - FINISHED_KEPT)]


async def measure(
    kube: Kube, planned: Planned, known: Mapping[str, Object], now: datetime.datetime
) -> Measurement | None:
    """The measurement of `planned`'s Job: created if it does not exist yet (None: in progress),
    read from `known` (the informer's, by name) or the apiserver, judged once it has finished."""
    name, namespace = planned.name, planned.namespace
    job = known.get(name)
    try:
        if job is None:
            try:
                await kube.create(JOB, namespace, planned.body())
                return None
            except KubeError as error:
                if error.status != 409:  # AlreadyExists: created before a restart; look at it
                    raise
            job = await kube.get(JOB, namespace, name)
            if job is None:
                return None  # deleted meanwhile (by hand?): created again at the next look
        owners = {ref.get("uid") for ref in job["metadata"].get("ownerReferences") or ()}
        if planned.rollout["metadata"]["uid"] not in owners:
            raise Unmeasurable(f"a Job {name} exists that this Rollout does not own")
        if _condition(job, "Failed") is not None:
            found = outcome(job, await kube.list(POD, namespace, f"{POD_JOB_LABEL}={name}"))
        else:
            found = outcome(job)
    except KubeError as error:
        raise Unmeasurable(f"Job {name}: {error}") from error
    if found is None:
        return None
    phase, message = found
    return Measurement(phase, now, None, message)


async def delete(kube: Kube, jobs: Iterable[Object]) -> None:
    """Delete `jobs` with their pods (Background: the garbage collector removes the pods after)."""
    for job in jobs:
        metadata = job["metadata"]
        await kube.delete(JOB, metadata["namespace"], metadata["name"], propagation="Background")
