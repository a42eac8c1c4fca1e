"""The schedule, limits and outcomes of an analysis: pure functions of a metric's spec, the
measurements recorded so far, and the time.

Nothing here measures. The controller asks `due` whether a metric needs a measurement now, takes
it, and hands it to `record`; the counters and the latest measurements live in the Rollout's
status, so a controller killed at any moment (even between measuring and recording) resumes with
the same counts and takes at most the one measurement that was due.

As in Argo Rollouts: a metric without `interval` measures once; with `interval` and no `count` it
measures until the release moves on; an error is retried and not counted. A metric is Failed
beyond `failureLimit` failed measurements, Inconclusive beyond `inconclusiveLimit` inconclusive
ones, and Successful when `count` is reached, or at once after `consecutiveSuccessLimit`
successes in a row (then a `count` reached first is Inconclusive, or Failed with `failureLimit: -1`).
A dry-run metric (`dryRun`) is measured and reported, but its outcome never decides the analysis.
Where we depart: errors beyond
`consecutiveErrorLimit` make the metric `Error`, which is *not* final. The release pauses and
says why, the provider is still retried, and the first good measurement makes the metric Running
again, so an unreachable Prometheus pauses a release instead of failing or promoting it and the
release resumes by itself when Prometheus is back.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from delivery.analysis.expr import ExprError, Value, parse
from delivery.api.analysis import DryRun, MeasurementRetention, Metric
from delivery.api.durations import seconds
from delivery.api.rollout import (
    ANALYSIS_HISTORY_LIMIT,
    MEASUREMENT_HISTORY_LIMIT,
    MEASUREMENT_RETENTION_LIMIT,
    AnalysisKind,
    AnalysisPhase,
)

Phase = AnalysisPhase
FINAL = (Phase.SUCCESSFUL, Phase.FAILED, Phase.INCONCLUSIVE)
ERROR_RETRY = 10.0
"""Seconds before an error is retried when the metric has no interval (Argo Rollouts' default)."""
MIN_INTERVAL = 1.0
"""Seconds: an `interval` of 0s measures once a second, not in a loop."""
VALUE_LENGTH = 256
MESSAGE_LENGTH = 512  # in the history; Events and status.message carry the whole message
HISTORY_BYTES = 256 * 1024
"""The most of a Rollout's status the analysis history should take (see `_bounded`); only the
running analyses at their largest (two of 128 metrics) can pass it, and stay under 1 MiB."""


def _format_time(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value: Value) -> str:
    """A measured value as people read it in the status: JSON, NaN as NaN, shortened."""
    try:
        text = json.dumps(value, separators=(",", ":"))
    except ValueError:  # pragma: no cover - json.dumps writes NaN unless told not to
        text = repr(value)
    return _short(text, VALUE_LENGTH)


# ---------------------------------------------------------------------------------------------
# One measurement


@dataclass(frozen=True)
class Measurement:
    phase: Phase  # Successful, Failed, Inconclusive or Error
    at: datetime.datetime
    value: str | None = None  # `show`n; None for an error
    message: str = ""

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"phase": self.phase.value, "finishedAt": _format_time(self.at)}
        if self.value is not None:
            status["value"] = self.value
        if self.message:
            status["message"] = _short(self.message, MESSAGE_LENGTH)
        return status

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Measurement:
        return cls(
            Phase(status["phase"]),
            _parse_time(status["finishedAt"]),
            status.get("value"),
            status.get("message", ""),
        )


def assess_value(metric: Metric, value: Value, at: datetime.datetime) -> Measurement:
    """The outcome of one measured value under the metric's conditions.

    Both conditions: failure wins, then success, else Inconclusive. Only a success condition:
    false is a failure. Only a failure condition: false is a success. A condition that does not
    parse, or does not apply to the value (a missing element, a type error), is an Error: the
    template is wrong or the data is missing, and neither may pass or fail a release.
    """
    shown = show(value)
    try:
        if metric.failure_condition and _holds("failureCondition", metric.failure_condition, value):
            return Measurement(
                Phase.FAILED, at, shown, f"failureCondition `{metric.failure_condition}` holds"
            )
        if metric.success_condition:
            if _holds("successCondition", metric.success_condition, value):
                return Measurement(Phase.SUCCESSFUL, at, shown)
            if metric.failure_condition:
                return Measurement(Phase.INCONCLUSIVE, at, shown, "neither condition holds")
            message = f"successCondition `{metric.success_condition}` does not hold"
            return Measurement(Phase.FAILED, at, shown, message)
    except _Unusable as error:
        return Measurement(Phase.ERROR, at, shown, str(error))
    return Measurement(Phase.SUCCESSFUL, at, shown)


class _Unusable(Exception):
    """A condition that cannot say anything about this value."""


def _holds(which: str, source: str, value: Value) -> bool:
    try:
        return parse(source).holds(value)
    except ExprError as error:
        raise _Unusable(f"{which} `{source}` cannot be evaluated: {error}") from error


# ---------------------------------------------------------------------------------------------
# One metric


@dataclass(frozen=True)
class MetricState:
    name: str
    phase: Phase = Phase.RUNNING
    message: str = ""
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    consecutive_success: int = 0
    dry_run: bool = False
    measurements: tuple[Measurement, ...] = ()  # the latest, newest last

    @property
    def last(self) -> Measurement | None:
        return self.measurements[-1] if self.measurements else None

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "phase": self.phase.value,
            "count": self.count,
            "successful": self.successful,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "error": self.error,
            "consecutiveError": self.consecutive_error,
            "consecutiveSuccess": self.consecutive_success,
            "measurements": [m.to_status() for m in self.measurements],
        }
        if self.dry_run:
            status["dryRun"] = True
        if self.message:
            status["message"] = _short(self.message, MESSAGE_LENGTH)
        return status

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> MetricState:
        return cls(
            name=status["name"],
            phase=Phase(status["phase"]),
            message=status.get("message", ""),
            count=status.get("count", 0),
            successful=status.get("successful", 0),
            failed=status.get("failed", 0),
            inconclusive=status.get("inconclusive", 0),
            error=status.get("error", 0),
            consecutive_error=status.get("consecutiveError", 0),
            consecutive_success=status.get("consecutiveSuccess", 0),
            dry_run=status.get("dryRun", False),
            measurements=tuple(Measurement.from_status(m) for m in status.get("measurements") or ()),
        )


def effective_count(metric: Metric) -> int | None:
    """How many measurements complete the metric; None: measure until the release moves on."""
    if metric.count is not None:
        return metric.count
    return None if metric.interval else 1


def _last_said(state: MetricState) -> str:
    last = state.last
    if last is None:
        return ""
    value = f"value {last.value}" if last.value is not None else ""
    return "; last: " + ", ".join(part for part in (value, last.message) if part)


def assess(metric: Metric, state: MetricState) -> MetricState:
    """The metric's phase and message from its counters: the limits, then the successes in a row,
    then the count (as Argo Rollouts' assessMetricStatus)."""
    wanted = effective_count(metric)
    streak = metric.consecutive_success_limit
    if 0 <= metric.failure_limit < state.failed:
        phase = Phase.FAILED
        message = f"{state.failed} failed (failureLimit {metric.failure_limit})"
    elif state.inconclusive > metric.inconclusive_limit:
        phase = Phase.INCONCLUSIVE
        message = f"{state.inconclusive} inconclusive (inconclusiveLimit {metric.inconclusive_limit})"
    elif state.consecutive_error > metric.consecutive_error_limit:
        phase = Phase.ERROR
        message = (
            f"{state.consecutive_error} errors in a row (consecutiveErrorLimit "
            f"{metric.consecutive_error_limit}), retrying"
        )
    elif streak and state.consecutive_success >= streak:
        phase = Phase.SUCCESSFUL
        message = f"{state.consecutive_success} successful in a row (consecutiveSuccessLimit {streak})"
    elif streak and wanted is not None and state.count >= wanted:
        # The count ran out before the streak: failed if only the streak could pass it.
        phase = Phase.INCONCLUSIVE if metric.failure_limit >= 0 else Phase.FAILED
        message = (
            f"count {wanted} reached with {state.consecutive_success} successful in a row "
            f"(consecutiveSuccessLimit {streak})"
        )
    else:
        phase = Phase.SUCCESSFUL if wanted is not None and state.count >= wanted else Phase.RUNNING
        message = f"{state.successful} of {state.count} successful"
    return replace(state, phase=phase, message=message + _last_said(state))


def record(
    metric: Metric, state: MetricState, measurement: Measurement, keep: int = MEASUREMENT_HISTORY_LIMIT
) -> MetricState:
    """`state` after `measurement`: counters, the latest `keep` measurements, the new phase."""
    counted = measurement.phase is not Phase.ERROR
    changed = replace(
        state,
        count=state.count + counted,
        successful=state.successful + (measurement.phase is Phase.SUCCESSFUL),
        failed=state.failed + (measurement.phase is Phase.FAILED),
        inconclusive=state.inconclusive + (measurement.phase is Phase.INCONCLUSIVE),
        error=state.error + (not counted),
        consecutive_error=0 if counted else state.consecutive_error + 1,
        consecutive_success=state.consecutive_success + 1 if measurement.phase is Phase.SUCCESSFUL else 0,
        measurements=(*state.measurements, measurement)[-keep:],
    )
    return assess(metric, changed)


def due(metric: Metric, state: MetricState, started: datetime.datetime) -> datetime.datetime | None:
    """When the metric's next measurement is due; None once the metric is final."""
    if state.phase in FINAL:
        return None
    last = state.last
    if last is None:
        return started + datetime.timedelta(seconds=seconds(metric.initial_delay or "0s"))
    if metric.interval:
        wait = max(seconds(metric.interval), MIN_INTERVAL)
    else:
        wait = ERROR_RETRY if last.phase is Phase.ERROR else 0.0
    return last.at + datetime.timedelta(seconds=wait)


@dataclass(frozen=True)
class Policy:
    """What an analysis's `dryRun` and `measurementRetention` (its templates' and its Rollout's)
    say of each metric. Each `metricName` is a regular expression searched for in the metric's
    name, as in Argo Rollouts (`.*`: every metric; `total` matches `total-errors`)."""

    dry_run: tuple[DryRun, ...] = ()
    retention: tuple[MeasurementRetention, ...] = ()

    def is_dry_run(self, name: str) -> bool:
        return any(re.search(entry.metric_name, name) for entry in self.dry_run)

    def keep(self, name: str) -> int:
        """Measurements of `name` kept: the last matching retention that says a number (the
        Rollout's come after the templates'), at most MEASUREMENT_RETENTION_LIMIT."""
        limits = [
            entry.limit for entry in self.retention if entry.limit and re.search(entry.metric_name, name)
        ]
        return min(limits[-1], MEASUREMENT_RETENTION_LIMIT) if limits else MEASUREMENT_HISTORY_LIMIT


# ---------------------------------------------------------------------------------------------
# One analysis: the metrics of a step's (or background, or pre/post-promotion) templates


RunKey = tuple[AnalysisKind, str, int | None, str | None]  # kind, revision, canary step, experiment analysis


@dataclass(frozen=True)
class Run:
    kind: AnalysisKind
    revision: str
    templates: tuple[str, ...]
    started_at: datetime.datetime
    step_index: int | None = None
    phase: Phase = Phase.RUNNING
    message: str = ""
    finished_at: datetime.datetime | None = None
    metrics: tuple[MetricState, ...] = field(default=())
    analysis: str | None = None  # an experiment step's analysis: its name

    @property
    def key(self) -> RunKey:
        return self.kind, self.revision, self.step_index, self.analysis

    @property
    def final(self) -> bool:
        return self.phase in FINAL

    @property
    def where(self) -> str:
        """How the run is named in messages: `step 2 analysis`, `background analysis`..."""
        if self.kind is AnalysisKind.STEP:
            return f"step {self.step_index} analysis"
        if self.kind is AnalysisKind.EXPERIMENT:
            return f"step {self.step_index} experiment analysis {self.analysis}"
        return {
            AnalysisKind.BACKGROUND: "background analysis",
            AnalysisKind.PRE_PROMOTION: "pre-promotion analysis",
            AnalysisKind.POST_PROMOTION: "post-promotion analysis",
        }[self.kind]

    def metric(self, name: str) -> MetricState:
        return next((m for m in self.metrics if m.name == name), MetricState(name))

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": ", ".join(self.templates),
            "kind": self.kind.value,
            "revision": self.revision,
            "phase": self.phase.value,
            "startedAt": _format_time(self.started_at),
            "metrics": [m.to_status() for m in self.metrics],
        }
        if self.step_index is not None:
            status["stepIndex"] = self.step_index
        if self.analysis is not None:
            status["analysis"] = self.analysis
        if self.message:
            status["message"] = _short(self.message, MESSAGE_LENGTH)
        if self.finished_at is not None:
            status["finishedAt"] = _format_time(self.finished_at)
        return status

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Run:
        finished = status.get("finishedAt")
        return cls(
            kind=AnalysisKind(status.get("kind", AnalysisKind.STEP)),
            revision=status["revision"],
            templates=tuple(name.strip() for name in status["name"].split(",") if name.strip()),
            started_at=_parse_time(status["startedAt"]),
            step_index=status.get("stepIndex"),
            phase=Phase(status["phase"]),
            message=status.get("message", ""),
            finished_at=_parse_time(finished) if finished else None,
            metrics=tuple(MetricState.from_status(m) for m in status.get("metrics") or ()),
            analysis=status.get("analysis"),
        )


def conclude(
    run: Run, metrics: Mapping[str, Metric], now: datetime.datetime, policy: Policy = Policy()
) -> Run:
    """The run's phase from its metrics' phases: the worst decides.

    Failed ends the run at once (the other metrics stop), so does Inconclusive; Error does not:
    the run keeps retrying and says which metric cannot be measured. Successful needs every metric
    successful. Dry-run metrics decide nothing: the run waits for them to end (or to err, which
    would otherwise hold it for ever), and its message adds what they said.
    """
    states = tuple(replace(run.metric(name), dry_run=policy.is_dry_run(name)) for name in metrics)
    deciding = [state for state in states if not state.dry_run]
    dry = [state for state in states if state.dry_run]
    said = "".join(
        f"; dry run: metric {state.name} {state.phase.value.lower()}: {state.message}"
        for state in dry
        if state.phase is not Phase.RUNNING
    )
    for phase in (Phase.FAILED, Phase.INCONCLUSIVE, Phase.ERROR):
        worst = next((state for state in deciding if state.phase is phase), None)
        if worst is not None:
            message = f"{run.where}: metric {worst.name} {phase.value.lower()}: {worst.message}"
            return _with_phase(run, phase, message + said, now, states)
    dry_done = all(state.phase is not Phase.RUNNING for state in dry)
    if states and dry_done and all(state.phase is Phase.SUCCESSFUL for state in deciding):
        summary = "; ".join(f"metric {state.name}: {state.message}" for state in deciding)
        message = f"{run.where} successful: {summary or 'every metric in dry-run mode'}{said}"
        return _with_phase(run, Phase.SUCCESSFUL, message, now, states)
    return _with_phase(run, Phase.RUNNING, f"{run.where}: running{said}", now, states)


def _with_phase(
    run: Run, phase: Phase, message: str, now: datetime.datetime, states: tuple[MetricState, ...]
) -> Run:
    return replace(
        run, phase=phase, message=message, metrics=states, finished_at=now if phase in FINAL else None
    )


def fail(run: Run, message: str) -> Run:
    """A run that cannot be measured at all (a missing template or argument): an Error, retried."""
    return replace(run, phase=Phase.ERROR, message=f"{run.where}: {message}", finished_at=None)


def next_due(run: Run, metrics: Mapping[str, Metric]) -> datetime.datetime | None:
    """The earliest measurement any metric of a running run is due for."""
    if run.final:
        return None
    times = [due(metric, run.metric(name), run.started_at) for name, metric in metrics.items()]
    present = [time for time in times if time is not None]
    return min(present) if present else None


# ---------------------------------------------------------------------------------------------
# The runs a release wants, started and stopped


@dataclass(frozen=True)
class Wanted:
    """A run the release needs now, and the templates it measures. `start`: start it if it does not
    exist yet; without, only keep it going (a resumed step goes back through Progressing, and must
    find its analysis where it left it, not stopped)."""

    kind: AnalysisKind
    revision: str
    templates: tuple[str, ...]
    step_index: int | None = None
    start: bool = True
    analysis: str | None = None  # an experiment step's analysis: its name

    @property
    def key(self) -> RunKey:
        return self.kind, self.revision, self.step_index, self.analysis


def current(runs: Iterable[Run], key: RunKey) -> Run | None:
    """The newest run for `key` (an earlier one may have been restarted)."""
    return next((run for run in reversed(tuple(runs)) if run.key == key), None)


def stop(run: Run, now: datetime.datetime, why: str) -> Run:
    """End a run the release no longer needs: what was measured so far stands, errors count as
    inconclusive, and a metric still running ends successful (nothing failed), as in Argo Rollouts."""
    stopped_phase = Phase.INCONCLUSIVE if run.phase is Phase.ERROR else Phase.SUCCESSFUL
    if run.phase is Phase.RUNNING and any(
        m.phase is Phase.INCONCLUSIVE and not m.dry_run for m in run.metrics
    ):
        stopped_phase = Phase.INCONCLUSIVE
    message = f"{run.where}: stopped ({why}); {run.message.removeprefix(run.where + ': ')}"
    return replace(run, phase=stopped_phase, message=message, finished_at=now)


def lifecycle(
    runs: Sequence[Run],
    wanted: Sequence[Wanted],
    now: datetime.datetime,
    *,
    promoted_by_person: bool = False,
) -> tuple[Run, ...]:
    """The runs after a decision: wanted ones started, unwanted running ones stopped, the history
    bounded (running runs are never dropped; the oldest finished ones go first).

    A person's promotion accepts an inconclusive or erroring run: a background run starts over
    (it keeps guarding the rest of the release), any other is marked successful on their word.
    """
    keys = {want.key for want in wanted}
    result = [run if run.final or run.key in keys else stop(run, now, "no longer needed") for run in runs]
    for want in wanted:
        run = current(result, want.key)
        undecided = run is not None and run.phase in (Phase.INCONCLUSIVE, Phase.ERROR)
        if run is None and not want.start:
            continue
        if run is None or (promoted_by_person and undecided and want.kind is AnalysisKind.BACKGROUND):
            if run is not None and not run.final:
                result[result.index(run)] = stop(run, now, "promoted by a person")
            result.append(
                Run(want.kind, want.revision, want.templates, now, want.step_index, analysis=want.analysis)
            )
        elif promoted_by_person and undecided:
            accepted = replace(
                run,
                phase=Phase.SUCCESSFUL,
                message=f"{run.where}: accepted by a person; {run.message.removeprefix(run.where + ': ')}",
                finished_at=now,
            )
            result[result.index(run)] = accepted
    return _bounded(result)


def _bounded(runs: list[Run]) -> tuple[Run, ...]:
    """At most ANALYSIS_HISTORY_LIMIT runs (the oldest finished go first) and HISTORY_BYTES of
    status: etcd keeps an object whole, 1.5 MiB at most, and a status write refused for its size
    would stall the release. Over the size, finished runs keep each metric's last measurement only
    (the counters keep the rest), then the oldest finished runs go, then running runs keep only
    their last measurements too (their counters and schedule need no more)."""
    droppable = max(0, len(runs) - ANALYSIS_HISTORY_LIMIT)
    kept: list[Run] = []
    for run in runs:
        if droppable and run.final:
            droppable -= 1
            continue
        kept.append(run)
    if _size(kept) > HISTORY_BYTES:
        kept = [_latest_only(run) if run.final else run for run in kept]
    while _size(kept) > HISTORY_BYTES and any(run.final for run in kept):
        kept.remove(next(run for run in kept if run.final))
    if _size(kept) > HISTORY_BYTES:
        kept = [_latest_only(run) for run in kept]
    return tuple(kept)


def _latest_only(run: Run) -> Run:
    return replace(run, metrics=tuple(replace(m, measurements=m.measurements[-1:]) for m in run.metrics))


def _size(runs: list[Run]) -> int:
    return len(json.dumps([run.to_status() for run in runs]))


def runs_from_status(status: Mapping[str, Any]) -> tuple[Run, ...]:
    return tuple(Run.from_status(record) for record in status.get("analysisHistory") or ())
