"""Take the measurements that are due, the only I/O of an analysis.

The controller calls `Analyst.advance` before it decides: each running analysis of the revision
being released has its templates read (so a fixed template takes effect at the next measurement),
the measurements that are due taken at once (concurrently), recorded, and the analysis concluded.
What is due is computed by the pure runner from the status, so a controller restarted between a
measurement and its status write measures once more, and never twice in one interval.

Analysis acts with the controller's identity and network position on text anyone who may write a
template wrote, so it reaches only what the egress policy allows (`egress.py`), and reads a Secret
for a header only with its owner's consent: in the Rollout's own namespace, labelled
SECRET_CONSENT_LABEL=true. A Secret's value never appears in a message.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from delivery import templating_budget
from delivery.analysis import bounded, prometheus, web
from delivery.analysis.egress import Egress
from delivery.analysis.provider import Unmeasurable
from delivery.analysis.runner import (
    Measurement,
    MetricState,
    Phase,
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
from delivery.api.analysis import Metric, Web, WebHeader
from delivery.api.rollout import AnalysisKind, RolloutAnalysis
from delivery.kube.api import Kube, KubeError
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
    """The Rollout an analysis is about: where to read templates and Secrets, the free arguments."""

    namespace: str
    builtin: Mapping[str, str]


class Analyses(Protocol):
    """Where the analyses a release asks for are found (a Rollout's plan): analysis needs only this of
    the Rollout, so it is used without Rollout planning."""

    def analysis(self, kind: AnalysisKind, step_index: int | None = None) -> RolloutAnalysis | None: ...


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
            analysis = analyses.analysis(run.kind, run.step_index)
            if run.final or run.revision != revision or analysis is None:
                continue  # finished, or about to be stopped by the decision
            try:
                metrics = await self.metrics(analysis, subject)
            except TemplateProblem as problem:
                advanced[position] = fail(run, str(problem))
                checks.append(now + datetime.timedelta(seconds=TEMPLATE_RETRY))
                continue
            measured, measurements = await self._measure_due(run, metrics, subject, now)
            advanced[position] = measured
            taken += [Taken(measured, measured.metric(name), m) for name, m in measurements]
            later = next_due(measured, metrics)
            if later is not None:
                checks.append(later)
        return Advanced(tuple(advanced), min(checks) if checks else None, tuple(taken))

    async def metrics(self, analysis: RolloutAnalysis, subject: Subject) -> dict[str, Metric]:
        found = []
        for ref in analysis.templates:
            kind = CLUSTER_ANALYSIS_TEMPLATE if ref.cluster_scope else ANALYSIS_TEMPLATE
            namespace = None if ref.cluster_scope else subject.namespace
            try:
                body = await self.kube.get(kind, namespace, ref.template_name)
            except KubeError as error:  # forbidden, say: said in the status like a missing template
                raise TemplateProblem(f"cannot read {kind.kind} {ref.template_name}: {error}") from error
            found.append(Found(ref.template_name, ref.cluster_scope, body))
        given = {argument.name: argument.value for argument in analysis.args or ()}
        # The texts render in a worker, within a budget: the wait blocks, so not on the loop.
        return await templating_budget.off_loop(resolve, found, given, subject.builtin)

    async def _measure_due(
        self, run: Run, metrics: Mapping[str, Metric], subject: Subject, now: datetime.datetime
    ) -> tuple[Run, list[tuple[str, Measurement]]]:
        states = {name: run.metric(name) for name in metrics}
        ready = [
            name
            for name, metric in metrics.items()
            if (when := due(metric, states[name], run.started_at)) is not None and when <= now
        ]
        measured = await asyncio.gather(*(self.measure(metrics[name], run, subject, now) for name in ready))
        for name, measurement in zip(ready, measured, strict=True):
            states[name] = record(metrics[name], states[name], measurement)
            for listener in self.on_measurement:
                listener(measurement)
        concluded = conclude(replace(run, metrics=tuple(states.values())), metrics, now)
        return concluded, list(zip(ready, measured, strict=True))

    async def measure(
        self, metric: Metric, run: Run, subject: Subject, now: datetime.datetime
    ) -> Measurement:
        """One measurement of `metric`; a provider that gives nothing usable makes an Error."""
        provider = metric.provider
        try:
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
    """The headers with their values, those from Secrets read with their owner's consent (in
    `namespace`, labelled SECRET_CONSENT_LABEL=true); Unmeasurable naming what is missing.
    Analysis and release hooks (delivery.rollout.hooks) send Secrets under the same consent."""
    headers: dict[str, str] = {}
    for header in wanted:
        if header.value is not None:
            headers[header.name] = header.value
            continue
        assert header.value_from is not None  # noqa: S101 - the CRD's CEL rule: value or valueFrom
        ref = header.value_from.secret_key_ref
        try:
            secret = await kube.get(SECRET, namespace, ref.name)
        except KubeError as error:
            raise Unmeasurable(f"header {header.name}: cannot read Secret {ref.name}: {error}") from error
        if secret is None:
            raise Unmeasurable(f"header {header.name}: Secret {ref.name} not found in {namespace}")
        labels = secret.get("metadata", {}).get("labels") or {}
        if labels.get(SECRET_CONSENT_LABEL) != "true":
            raise Unmeasurable(
                f"header {header.name}: Secret {ref.name} is not labelled {SECRET_CONSENT_LABEL}=true, "
                "so analysis may not read it (label it to consent)"
            )
        data = secret.get("data") or {}
        if ref.key not in data:
            raise Unmeasurable(f"header {header.name}: Secret {ref.name} has no key {ref.key}")
        headers[header.name] = base64.b64decode(data[ref.key]).decode()
    return headers
