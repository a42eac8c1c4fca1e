"""A canary experiment step (Argo Rollouts' `experiment`): what it runs and where it stands. Pure.

An experiment lives in the Rollout's status (`status.experiment`), not in an Experiment object: one
object to watch and to `kubectl wait` on, as analysis lives there too, and no kind, watch or RBAC
more. Its ReplicaSets are the Rollout's (owned by it, labelled with its name and
EXPERIMENT_LABEL), so deleting the Rollout takes them, and the controller's ReplicaSet watch sees them.

Its life, as Argo's Experiment:
- Pending: its ReplicaSets are made (one per template, from the stable or the canary revision's pod
  template, with a pod-template-hash of their own) and wait to be available;
- Running: all available (`availableAt`); its analyses start, the duration counts from here;
- Failed or Inconclusive as soon as one analysis is (the step fails: the release aborts, or
  pauses); Successful once every `requiredForCompletion` analysis passed, or once the duration
  passed with no required analysis still running; without a duration and with no required analysis
  it runs until a person promotes (Argo: "indefinitely");
- Terminated when the release leaves the step before (an abort, a promotion, a new revision).
Once it ends, its ReplicaSets are deleted (`desired` is empty): the controller deletes every
experiment ReplicaSet of the Rollout that `desired` does not name.
"""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from delivery.analysis.run import Analyses
from delivery.analysis.runner import Phase, Run
from delivery.api.durations import seconds
from delivery.api.rollout import (
    AnalysisKind,
    AnalysisRunMetadata,
    ExperimentPhase,
    RolloutAnalysis,
    SpecRef,
    TemplateRef,
)
from delivery.api.rollout import Experiment as ExperimentSpec
from delivery.kube import shard
from delivery.kube.api import Object
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL, owner_reference, template_hash

EXPERIMENT_LABEL = "delivery.luojilab.com/experiment"
"""On an experiment's ReplicaSets and pods: the template's name. A ReplicaSet with it is never a
revision of the Rollout (history, scaling and Services leave it alone)."""
FINAL = (
    ExperimentPhase.SUCCESSFUL,
    ExperimentPhase.FAILED,
    ExperimentPhase.INCONCLUSIVE,
    ExperimentPhase.TERMINATED,
)
NAME_LIMIT = 200  # a ReplicaSet's name, leaving room for its pods' suffixes within 253


@dataclass(frozen=True)
class TemplatePlan:
    name: str
    spec_ref: SpecRef
    replicas: int
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    match_labels: Mapping[str, str] | None = None  # the template's own selector; None: the Rollout's
    service: bool = False  # a Service selects its pods
    service_name: str | None = None  # its name; None: the ReplicaSet's


@dataclass(frozen=True)
class AnalysisPlan:
    name: str
    analysis: RolloutAnalysis  # one template, its args as written (`{{templates.X...}}` unfilled)
    required: bool = False


@dataclass(frozen=True)
class Plan:
    """An experiment step as the decision and the controller read it."""

    duration: float | None
    templates: tuple[TemplatePlan, ...]
    analyses: tuple[AnalysisPlan, ...] = ()

    def analysis(self, name: str | None) -> AnalysisPlan | None:
        return next((a for a in self.analyses if a.name == name), None)


def plan_of(spec: ExperimentSpec) -> Plan:
    metadata: AnalysisRunMetadata | None = spec.analysis_run_metadata
    return Plan(
        duration=None if spec.duration is None else seconds(spec.duration),
        templates=tuple(
            TemplatePlan(
                t.name,
                t.spec_ref,
                t.replicas,
                dict((t.metadata and t.metadata.labels) or {}),
                dict((t.metadata and t.metadata.annotations) or {}),
                dict(t.selector.match_labels or {}) if t.selector is not None else None,
                t.service is not None,
                t.service.name if t.service is not None else None,
            )
            for t in spec.templates
        ),
        analyses=tuple(
            AnalysisPlan(
                a.name,
                RolloutAnalysis(
                    templates=[TemplateRef(template_name=a.template_name, cluster_scope=a.cluster_scope)],
                    args=a.args,
                    dry_run=spec.dry_run,
                    analysis_run_metadata=metadata,
                ),
                a.required_for_completion,
            )
            for a in spec.analyses or ()
        ),
    )


@dataclass(frozen=True)
class TemplateStatus:
    name: str
    replica_set: str
    pod_template_hash: str
    replicas: int
    available: int = 0
    service: str | None = None  # the name of its Service, if it has one

    def to_status(self) -> dict[str, Any]:
        status = {
            "name": self.name,
            "replicaSet": self.replica_set,
            "podTemplateHash": self.pod_template_hash,
            "replicas": self.replicas,
            "availableReplicas": self.available,
        }
        return status if self.service is None else {**status, "serviceName": self.service}


@dataclass(frozen=True)
class Record:
    """status.experiment."""

    revision: str
    step_index: int
    phase: ExperimentPhase
    templates: tuple[TemplateStatus, ...] = ()
    message: str = ""
    available_at: datetime.datetime | None = None

    @property
    def final(self) -> bool:
        return self.phase in FINAL

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "revision": self.revision,
            "stepIndex": self.step_index,
            "phase": self.phase.value,
            "templates": [t.to_status() for t in self.templates],
        }
        if self.message:
            status["message"] = self.message[:1024]
        if self.available_at is not None:
            status["availableAt"] = self.available_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return status

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> Record | None:
        if not status:
            return None
        available = status.get("availableAt")
        return cls(
            revision=status["revision"],
            step_index=status["stepIndex"],
            phase=ExperimentPhase(status["phase"]),
            templates=tuple(
                TemplateStatus(
                    t["name"],
                    t["replicaSet"],
                    t["podTemplateHash"],
                    t.get("replicas", 0),
                    t.get("availableReplicas", 0),
                    t.get("serviceName"),
                )
                for t in status.get("templates") or ()
            ),
            message=status.get("message", ""),
            available_at=datetime.datetime.fromisoformat(available) if available else None,
        )


def pod_template(plan: TemplatePlan, sources: Mapping[SpecRef, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The template's pods: its revision's pod template (without that revision's hash) with the
    template's labels and annotations; None while that revision's template is not known."""
    source = sources.get(plan.spec_ref)
    if source is None:
        return None
    template = copy.deepcopy(dict(source))
    metadata = template.setdefault("metadata", {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != HASH_LABEL}
    metadata["labels"] = {**labels, **plan.labels, EXPERIMENT_LABEL: plan.name}
    if plan.annotations:
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **plan.annotations}
    return template


def _started(
    plan: Plan, rollout: str, revision: str, index: int, sources: Mapping[SpecRef, Mapping[str, Any]]
) -> Record:
    """A new experiment: each template's ReplicaSet named, its hash computed (the experiment's
    revision and step are part of it, so its pods never share the revision's hash)."""
    templates = []
    for template in plan.templates:
        pods = pod_template(template, sources) or {}
        digest = template_hash({"template": pods, "experiment": f"{revision}/{index}/{template.name}"})
        name = f"{rollout}-{revision}-{index}-{template.name}"[:NAME_LIMIT].rstrip("-.")
        service = (template.service_name or name[:63].rstrip("-.")) if template.service else None
        templates.append(TemplateStatus(template.name, name, digest, template.replicas, service=service))
    message = f"step {index}: experiment started: waiting for {len(templates)} ReplicaSets to be available"
    return Record(revision, index, ExperimentPhase.PENDING, tuple(templates), message)


def _observed(record: Record, available: Mapping[str, int]) -> Record:
    templates = tuple(replace(t, available=available.get(t.replica_set, 0)) for t in record.templates)
    return replace(record, templates=templates)


def _ended(record: Record, phase: ExperimentPhase, message: str) -> Record:
    """The experiment ended: its ReplicaSets go, so none of their pods counts as available any more
    (what was last seen of them depends on when it ended, and the status must not)."""
    templates = tuple(replace(t, available=0) for t in record.templates)
    return replace(record, phase=phase, message=message, templates=templates)


def _analysis_runs(record: Record, runs: Sequence[Run]) -> dict[str, Run]:
    return {
        run.analysis: run
        for run in runs
        if run.kind is AnalysisKind.EXPERIMENT
        and run.revision == record.revision
        and run.step_index == record.step_index
        and run.analysis is not None
    }


def concluded(
    plan: Plan,
    record: Record,
    available: Mapping[str, int],
    runs: Sequence[Run],
    now: datetime.datetime,
) -> Record:
    """The experiment after what is observed: its ReplicaSets' available pods (by name), its analyses."""
    if record.final:
        return record
    record = _observed(record, available)
    where = f"step {record.step_index}: experiment"
    if record.phase is ExperimentPhase.PENDING:
        if not all(t.available >= t.replicas for t in record.templates):
            return record
        record = replace(
            record,
            phase=ExperimentPhase.RUNNING,
            available_at=now,
            message=f"{where} running: every ReplicaSet available",
        )
    ran = _analysis_runs(record, runs)
    for analysis in plan.analyses:
        run = ran.get(analysis.name)
        if run is not None and run.phase in (Phase.FAILED, Phase.INCONCLUSIVE):
            phase = ExperimentPhase.FAILED if run.phase is Phase.FAILED else ExperimentPhase.INCONCLUSIVE
            return _ended(record, phase, f"{where} analysis {analysis.name}: {run.message}")
    required = [a for a in plan.analyses if a.required]
    passed = all((run := ran.get(a.name)) is not None and run.phase is Phase.SUCCESSFUL for a in required)
    if required and passed:
        names = ", ".join(a.name for a in required)
        return _ended(record, ExperimentPhase.SUCCESSFUL, f"{where}: {names} passed")
    elapsed = (now - record.available_at).total_seconds() if record.available_at is not None else 0.0
    if plan.duration is not None and passed and elapsed >= plan.duration:
        done = f"{where}: {plan.duration:g}s passed"
        return _ended(record, ExperimentPhase.SUCCESSFUL, done)
    return record


def remaining(plan: Plan, record: Record | None, now: datetime.datetime) -> float | None:
    """Seconds until a running experiment's duration has passed."""
    if record is None or record.phase is not ExperimentPhase.RUNNING or plan.duration is None:
        return None
    assert record.available_at is not None  # noqa: S101 - Running is dated
    return max(plan.duration - (now - record.available_at).total_seconds(), 0.0)


def settled(
    plan: Plan | None,
    record: Record | None,
    *,
    active: bool,
    aborted: bool,
    rollout: str,
    revision: str,
    index: int,
    sources: Mapping[SpecRef, Mapping[str, Any]],
) -> Record | None:
    """The experiment once the release has moved: started on entering the step (`active`, `plan` the
    step's), ended as Terminated when the release left the step before it concluded."""
    current = record is not None and record.revision == revision and record.step_index == index
    cut_short = record is not None and record.phase is ExperimentPhase.TERMINATED  # a release back here
    if active and plan is not None and (not current or cut_short):
        return _started(plan, rollout, revision, index, sources)
    if record is not None and not record.final and not (active and current):
        why = "the release aborted" if aborted else "the release left the step"
        where = f"step {record.step_index}: experiment"
        return _ended(record, ExperimentPhase.TERMINATED, f"{where} terminated: {why}")
    return record


def desired(record: Record | None) -> dict[str, int]:
    """The experiment ReplicaSets that should exist, by name, with their replicas: none once it ended."""
    if record is None or record.final:
        return {}
    return {t.replica_set: t.replicas for t in record.templates}


def services(record: Record | None) -> dict[str, TemplateStatus]:
    """The experiment Services that should exist, by name: none once it ended."""
    if record is None or record.final:
        return {}
    return {t.service: t for t in record.templates if t.service is not None}


def service(rollout: Object, status: TemplateStatus, replicaset: Object) -> Object | None:
    """The Service of one experiment template: its ReplicaSet's pods, on its containers' ports (as
    Argo makes it); None when they declare no port."""
    if status.service is None:
        return None
    ports = [
        {
            **({"name": port["name"]} if port.get("name") else {}),
            "protocol": port.get("protocol", "TCP"),
            "port": port["containerPort"],
            "targetPort": port["containerPort"],
        }
        for container in replicaset["spec"]["template"]["spec"].get("containers", [])
        for port in container.get("ports") or ()
    ]
    if not ports:
        return None
    labels = replicaset["metadata"]["labels"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": status.service,
            "namespace": rollout["metadata"]["namespace"],
            "labels": shard.labelled(
                {key: labels[key] for key in (ROLLOUT_LABEL, EXPERIMENT_LABEL, HASH_LABEL)}, shard.of(rollout)
            ),
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": {"selector": dict(replicaset["spec"]["selector"]["matchLabels"]), "ports": ports},
    }


_REFERENCE = re.compile(r"\{\{\s*templates\.([a-z0-9-]+)\.(podTemplateHash|replicaset\.name)\s*\}\}")


def filled(analysis: RolloutAnalysis, record: Record | None) -> RolloutAnalysis:
    """An experiment analysis with `{{templates.NAME.podTemplateHash}}` and
    `{{templates.NAME.replicaset.name}}` in its argument values filled in (Argo Rollouts' names)."""
    if record is None or not analysis.args:
        return analysis
    by_name = {t.name: t for t in record.templates}

    def fill(match: re.Match[str]) -> str:
        template = by_name.get(match.group(1))
        if template is None:
            return match.group(0)
        return template.pod_template_hash if match.group(2) == "podTemplateHash" else template.replica_set

    args = [
        arg.model_copy(update={"value": _REFERENCE.sub(fill, arg.value)}) if arg.value is not None else arg
        for arg in analysis.args
    ]
    return analysis.model_copy(update={"args": args})


def replica_set(
    rollout: Object,
    plan: TemplatePlan,
    status: TemplateStatus,
    sources: Mapping[SpecRef, Mapping[str, Any]],
    *,
    match_labels: Mapping[str, str],
    min_ready_seconds: int | None = None,
) -> Object | None:
    """The ReplicaSet of one experiment template, owned by the Rollout; None while its source
    revision's pod template is not known."""
    pods = pod_template(plan, sources)
    if pods is None:
        return None
    pods["metadata"]["labels"][HASH_LABEL] = status.pod_template_hash
    name = rollout["metadata"]["name"]
    selector = dict(plan.match_labels if plan.match_labels is not None else match_labels)
    selector.update(plan.labels)
    selector[HASH_LABEL] = status.pod_template_hash
    spec: dict[str, Any] = {
        "replicas": status.replicas,
        "selector": {"matchLabels": selector},
        "template": pods,
    }
    if min_ready_seconds is not None:
        spec["minReadySeconds"] = min_ready_seconds
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": status.replica_set,
            "namespace": rollout["metadata"]["namespace"],
            "labels": shard.labelled({**pods["metadata"]["labels"], ROLLOUT_LABEL: name}, shard.of(rollout)),
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": spec,
    }


@dataclass(frozen=True)
class Filled:
    """The analyses of a release, an experiment's with its ReplicaSets' names and hashes filled in."""

    analyses: Analyses
    record: Record | None

    def analysis(
        self, kind: AnalysisKind, step_index: int | None = None, name: str | None = None
    ) -> RolloutAnalysis | None:
        found = self.analyses.analysis(kind, step_index, name)
        if found is None or kind is not AnalysisKind.EXPERIMENT:
            return found
        return filled(found, self.record)
