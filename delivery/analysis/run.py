"""Take the measurements that are due, the only I/O of an analysis.

The controller calls `Analyst.advance` before it decides: each running analysis of the revision
being released has its templates read (so a fixed template takes effect at the next measurement),
the measurements that are due taken at once (concurrently), recorded, and the analysis concluded.
What is due is computed by the pure runner from the status, so a controller restarted between a
measurement and its status write measures once more, and never twice in one interval.

Analysis acts with the controller's identity and network position on text anyone who may write a
template wrote, so it reaches only what the egress policy allows (`egress.py`), and reads a Secret
(for a header, or an argument's `valueFrom.secretKeyRef`) only with its owner's consent: in the
Rollout's own namespace, labelled SECRET_CONSENT_LABEL=true. A Secret's value never appears in a
message: an argument's is replaced by `***` wherever a message would quote it.

A `job` metric's measurement takes longer than a reconcile (`job.py`): it is in progress (nothing
recorded) until its Job has finished, looked at again when the Job changes or after `job.POLL`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import ValidationError

from delivery import templating_budget
from delivery.analysis import bounded, job, prometheus, web
from delivery.analysis.egress import Egress
from delivery.analysis.provider import Unmeasurable
from delivery.analysis.runner import (
    Measurement,
    MetricState,
    Phase,
    Policy,
    Run,
    assess_value,
    conclude,
    due,
    fail,
    next_due,
    record,
    show,
)
from delivery.analysis.templates import Found, TemplateProblem, resolve
from delivery.api.analysis import AnalysisTemplateSpec, Metric, SecretKeySelector, Web, WebHeader
from delivery.api.rollout import AnalysisArgument, AnalysisKind, PodTemplateHash, RolloutAnalysis
from delivery.kube.api import Kube, KubeError, Object
from delivery.kube.kinds import ANALYSIS_TEMPLATE, CLUSTER_ANALYSIS_TEMPLATE, SECRET

log = logging.getLogger(__name__)

PROMETHEUS_ENV = "DELIVERY_PROMETHEUS_URL"
"""The Prometheus a metric without `address` asks (a local control plane's shell, say)."""
SECRET_CONSENT_LABEL = "delivery.luojilab.com/analysis-secret"  # noqa: S105 - a label's name
"""A Secret analysis may read for a header carries this label, "true": set by whoever may write the
Secret, so writing a template alone never reveals one."""
TEMPLATE_RETRY = 15.0
"""Seconds before a missing or broken template is read again."""


@dataclass(frozen=True)
class Subject:
    """The Rollout an analysis is about: where to read templates and Secrets, the free arguments,
    the Rollout itself (for `fieldRef` arguments, and to own the Jobs of `job` metrics), and its
    Jobs as the informer last saw them, by name."""

    namespace: str
    builtin: Mapping[str, str]
    rollout: Mapping[str, Any] = field(default_factory=dict)
    jobs: Mapping[str, Object] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    """An analysis's metrics with their texts filled in, what its dryRun and measurementRetention
    say of them, and the Secret values its arguments hold (never to be shown)."""

    metrics: dict[str, Metric]
    policy: Policy = field(default_factory=Policy)
    secrets: tuple[str, ...] = ()

    def redacted(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


class Analyses(Protocol):
    """Where the analyses a release asks for are found (a Rollout's plan): analysis needs only this of
    the Rollout, so it is used without Rollout planning."""

    def analysis(
        self, kind: AnalysisKind, step_index: int | None = None, name: str | None = None
    ) -> RolloutAnalysis | None: ...


EVENT_SEQUENCES = 0x80000000
"""Measurement Events are numbered from here (a hash below it), apart from the transitions'."""


@dataclass(frozen=True)
class Taken:
    """One measurement taken this reconcile, with its run and metric after recording it."""

    run: Run
    metric: MetricState
    measurement: Measurement

    @property
    def notable(self) -> bool:
        """Worth an Event: a failed or inconclusive measurement, or the first error of a streak
        (the rest of the streak is in the status, and in the pause it leads to)."""
        phase = self.measurement.phase
        return phase in (Phase.FAILED, Phase.INCONCLUSIVE) or (
            phase is Phase.ERROR and self.metric.consecutive_error == 1
        )

    def message(self) -> str:
        """What the measurement's Event says (its reason is the machine's, by the measurement's phase)."""
        measured = self.measurement
        what = f"value {measured.value}" if measured.value is not None else "no value"
        counts = (
            f"{self.metric.failed} failed, {self.metric.inconclusive} inconclusive, {self.metric.count} taken"
        )
        return f"{self.run.where}: metric {self.metric.name}: {what}: {measured.message} ({counts})"

    @property
    def sequence(self) -> int:
        """The Event's number: the same measurement, recorded again after a restart, names the same Event."""
        run = self.run
        key = f"{run.kind}/{run.revision}/{run.step_index}/{run.started_at}/{self.metric.name}"
        if run.analysis is not None:  # an experiment's analyses share their step
            key += f"/{run.analysis}"
        key += f"/{self.metric.count}/{self.metric.error}"
        return EVENT_SEQUENCES | (zlib.crc32(key.encode()) & (EVENT_SEQUENCES - 1))


@dataclass(frozen=True)
class Advanced:
    runs: tuple[Run, ...]
    next_check: datetime.datetime | None  # the earliest measurement due next, or template retry
    taken: tuple[Taken, ...] = ()


class Analyst:
    def __init__(self, kube: Kube, prometheus_url: str | None = None, egress: Egress | None = None) -> None:
        self.kube = kube
        self.prometheus_url = prometheus_url or os.environ.get(PROMETHEUS_ENV) or None
        # The built-in refusals until the process sets its flags' policy (with its apiserver).
        self.egress = egress or Egress()
        # Told of each measurement as it is taken (metrics by outcome, say).
        self.on_measurement: list[Callable[[Measurement], None]] = []

    async def advance(
        self,
        runs: tuple[Run, ...],
        analyses: Analyses,
        revision: str,
        subject: Subject,
        now: datetime.datetime,
    ) -> Advanced:
        """Every unfinished analysis of `revision` measured where due, recorded and concluded."""
        checks: list[datetime.datetime] = []
        taken: list[Taken] = []
        advanced = list(runs)
        for position, run in enumerate(runs):
            analysis = analyses.analysis(run.kind, run.step_index, run.analysis)
            if run.final or run.revision != revision or analysis is None:
                continue  # finished, or about to be stopped by the decision
            try:
                resolved = await self.resolved(analysis, subject)
            except TemplateProblem as problem:
                advanced[position] = fail(run, str(problem))
                checks.append(now + datetime.timedelta(seconds=TEMPLATE_RETRY))
                continue
            measured, measurements, pending = await self._measure_due(run, resolved, subject, now, analysis)
            advanced[position] = measured
            taken += [Taken(measured, measured.metric(name), m) for name, m in measurements]
            waiting = {name: metric for name, metric in resolved.metrics.items() if name not in pending}
            later = next_due(measured, waiting)
            if later is not None:
                checks.append(later)
            if pending and not measured.final:
                checks.append(now + datetime.timedelta(seconds=job.POLL))
        return Advanced(tuple(advanced), min(checks) if checks else None, tuple(taken))

    async def resolved(self, analysis: RolloutAnalysis, subject: Subject) -> Resolved:
        """The analysis's metrics as they are measured now: templates read, arguments found
        (the Rollout's, Secrets', defaults), texts filled in; TemplateProblem otherwise."""
        found = []
        for ref in analysis.templates:
            kind = CLUSTER_ANALYSIS_TEMPLATE if ref.cluster_scope else ANALYSIS_TEMPLATE
            namespace = None if ref.cluster_scope else subject.namespace
            try:
                body = await self.kube.get(kind, namespace, ref.template_name)
            except KubeError as error:  # forbidden, say: said in the status like a missing template
                raise TemplateProblem(f"cannot read {kind.kind} {ref.template_name}: {error}") from error
            found.append(Found(ref.template_name, ref.cluster_scope, body))
        given = {argument.name: _argument(argument, subject) for argument in analysis.args or ()}
        secrets = await self._secret_args(found, given, subject)
        resolved = Resolved({}, secrets=tuple(secrets.values()))
        try:
            # The texts render in a worker, within a budget: the wait blocks, so not on the loop.
            metrics = await templating_budget.off_loop(resolve, found, {**secrets, **given}, subject.builtin)
        except TemplateProblem as problem:
            raise TemplateProblem(resolved.redacted(str(problem))) from problem
        policy = Policy(
            tuple(entry for spec in _specs(found) for entry in spec.dry_run or ())
            + tuple(analysis.dry_run or ()),
            tuple(entry for spec in _specs(found) for entry in spec.measurement_retention or ())
            + tuple(analysis.measurement_retention or ()),
        )
        return replace(resolved, metrics=metrics, policy=policy)

    async def _secret_args(
        self, found: Iterable[Found], given: Mapping[str, str], subject: Subject
    ) -> dict[str, str]:
        """The templates' arguments whose value is a Secret's (the Rollout giving none), read with consent."""
        values: dict[str, str] = {}
        for spec, template in zip(_specs(found), found, strict=True):
            for argument in spec.args or ():
                if argument.value_from is None or argument.name in given or argument.name in values:
                    continue
                what = f"{template.described}: argument {argument.name}"
                try:
                    values[argument.name] = await read_secret(
                        self.kube, subject.namespace, argument.value_from.secret_key_ref, what
                    )
                except Unmeasurable as error:
                    raise TemplateProblem(str(error)) from error
        return values

    async def _measure_due(
        self,
        run: Run,
        resolved: Resolved,
        subject: Subject,
        now: datetime.datetime,
        analysis: RolloutAnalysis,
    ) -> tuple[Run, list[tuple[str, Measurement]], set[str]]:
        """The run after its due measurements; those taken, and the metrics whose measurement is
        still in progress (a Job running)."""
        metrics = resolved.metrics
        states = {name: run.metric(name) for name in metrics}
        ready = [
            name
            for name, metric in metrics.items()
            if (when := due(metric, states[name], run.started_at)) is not None and when <= now
        ]
        measured = await asyncio.gather(
            *(
                self.measure(metrics[name], run, subject, now, state=states[name], analysis=analysis)
                for name in ready
            )
        )
        taken = [
            (name, replace(measurement, message=resolved.redacted(measurement.message)))
            for name, measurement in zip(ready, measured, strict=True)
            if measurement is not None
        ]
        for name, measurement in taken:
            states[name] = record(metrics[name], states[name], measurement, resolved.policy.keep(name))
            for listener in self.on_measurement:
                listener(measurement)
        concluded = conclude(replace(run, metrics=tuple(states.values())), metrics, now, resolved.policy)
        pending = {name for name, measurement in zip(ready, measured, strict=True) if measurement is None}
        return concluded, taken, pending

    async def collect(self, runs: Iterable[Run], subject: Subject) -> None:
        """Delete the Rollout's analysis Jobs that are no longer needed (see `job.stale`)."""
        await job.delete(self.kube, job.stale(subject.jobs.values(), runs))

    async def measure(
        self,
        metric: Metric,
        run: Run,
        subject: Subject,
        now: datetime.datetime,
        *,
        state: MetricState | None = None,
        analysis: RolloutAnalysis | None = None,
    ) -> Measurement | None:
        """One measurement of `metric` (None: in progress); a provider that gives nothing usable
        makes an Error."""
        provider = metric.provider
        try:
            if provider.job is not None:
                state = state or MetricState(metric.name)
                rollout = subject.rollout
                metadata = rollout["metadata"]
                number = state.count + state.error + 1
                name = job.job_name(metadata["name"], metadata["uid"], run, metric.name, number)
                extra = analysis.analysis_run_metadata if analysis is not None else None
                planned = job.Planned(provider.job, name, rollout, run, metric.name, extra)
                return await job.measure(self.kube, planned, subject.jobs, now)
            if provider.prometheus is not None:
                address = self._address(provider.prometheus.address)
                value = await prometheus.query(address, provider.prometheus.query, egress=self.egress)
                return assess_value(metric, value, now)
            if provider.web is not None:
                headers = await self._headers(provider.web, subject)
                return assess_value(metric, await web.fetch(provider.web, headers, egress=self.egress), now)
            assert provider.judge is not None  # noqa: S101 - the CRD's CEL rule: exactly one provider
            address = self._address(provider.judge.address)
            verdict = await prometheus.compare(
                address, provider.judge, metric.name, run.started_at, now, egress=self.egress
            )
            return Measurement(verdict.phase, now, show(verdict.value), verdict.message)
        except Unmeasurable as error:
            return Measurement(Phase.ERROR, now, None, bounded.printable(str(error)))
        except Exception as error:  # a bug of ours must pause the release with a message, not stall it
            log.exception("measuring %s", metric.name)
            return Measurement(Phase.ERROR, now, None, f"measuring failed: {type(error).__name__}: {error}")

    def _address(self, address: str | None) -> str:
        chosen = address or self.prometheus_url
        if not chosen:
            raise Unmeasurable(
                "no Prometheus address: give the metric an address, "
                f"or start the controller with {PROMETHEUS_ENV}"
            )
        return chosen

    async def _headers(self, spec: Web, subject: Subject) -> dict[str, str]:
        return await secret_headers(self.kube, spec.headers or (), subject.namespace)


async def secret_headers(kube: Kube, wanted: Iterable[WebHeader], namespace: str) -> dict[str, str]:
    """The headers with their values, those from Secrets read with their owner's consent
    (`read_secret`). Analysis and release hooks (delivery.rollout.hooks) send Secrets under the
    same consent."""
    headers: dict[str, str] = {}
    for header in wanted:
        if header.value is not None:
            headers[header.header] = header.value
            continue
        assert header.value_from is not None  # noqa: S101 - the CRD's CEL rule: value or valueFrom
        headers[header.header] = await read_secret(
            kube, namespace, header.value_from.secret_key_ref, f"header {header.header}"
        )
    return headers


async def read_secret(kube: Kube, namespace: str, ref: SecretKeySelector, what: str) -> str:
    """A Secret's value, read only with its owner's consent; Unmeasurable naming what is missing."""
    try:
        secret = await kube.get(SECRET, namespace, ref.name)
    except KubeError as error:
        raise Unmeasurable(f"{what}: cannot read Secret {ref.name}: {error}") from error
    if secret is None:
        raise Unmeasurable(f"{what}: Secret {ref.name} not found in {namespace}")
    labels = secret.get("metadata", {}).get("labels") or {}
    if labels.get(SECRET_CONSENT_LABEL) != "true":
        raise Unmeasurable(
            f"{what}: Secret {ref.name} is not labelled {SECRET_CONSENT_LABEL}=true, "
            "so analysis may not read it (label it to consent)"
        )
    data = secret.get("data") or {}
    if ref.key not in data:
        raise Unmeasurable(f"{what}: Secret {ref.name} has no key {ref.key}")
    return base64.b64decode(data[ref.key]).decode()


def _specs(found: Iterable[Found]) -> list[AnalysisTemplateSpec]:
    """The templates' specs as far as they parse (resolve says what is wrong with one that does not)."""
    specs = []
    for template in found:
        try:
            specs.append(AnalysisTemplateSpec.model_validate((template.body or {}).get("spec") or {}))
        except ValidationError:
            specs.append(AnalysisTemplateSpec.model_construct(metrics=[]))
    return specs


def _argument(argument: AnalysisArgument, subject: Subject) -> str:
    """A Rollout's argument: its value, or the field or pod-template-hash it names (as Argo Rollouts)."""
    if argument.value is not None:
        return argument.value
    source = argument.value_from
    assert source is not None  # noqa: S101 - the CRD's CEL rule: value or valueFrom
    if source.pod_template_hash_value is not None:
        role = "stable-hash" if source.pod_template_hash_value is PodTemplateHash.STABLE else "canary-hash"
        return subject.builtin[role]
    assert source.field_ref is not None  # noqa: S101 - the CRD's CEL rule: one source
    path = source.field_ref.field_path
    try:
        value = web.pick(dict(subject.rollout), "$." + path.removeprefix("$").removeprefix("."))
    except Unmeasurable as error:
        raise TemplateProblem(
            f"argument {argument.name}: fieldRef {path}: not found in the Rollout"
        ) from error
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateProblem(f"argument {argument.name}: fieldRef {path} must name a string, number or boolean")
