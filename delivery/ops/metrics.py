"""The controller's Prometheus metrics, all in one place so their names are stable and listed once.

Counters and histograms are updated where things happen (the work queue, the notifier; the Kube
layer and the analysis runner, which sit below this module, through the callbacks `delivery.operator`
gives them: `Kube(on_error=...)`, `Analyst.on_measurement`); what the cache already knows (rollouts
by phase) is computed at scrape time from it instead of being kept twice. The scrape runs on the
event loop (see `delivery.ops.health`), so reading the cache needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from delivery.machine import Reason

RECONCILES = Counter(
    "delivery_reconciles",
    "Reconciles by resource and result (ok, requeue, error, cancelled)",
    ["resource", "result"],
)
RECONCILE_SECONDS = Histogram(
    "delivery_reconcile_duration_seconds", "Time of one reconcile", ["resource", "result"]
)
QUEUE_DEPTH = Gauge("delivery_workqueue_depth", "Keys waiting for a worker", ["resource"])
STEP_SECONDS = Histogram(
    "delivery_rollout_step_duration_seconds",
    "Time from the start of a canary step to its completion (steps seen whole by this replica)",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
TRANSITIONS = Counter("delivery_rollout_transitions", "Rollout transitions recorded, by reason", ["reason"])
MEASUREMENTS = Counter("delivery_analysis_measurements", "Analysis measurements by outcome", ["outcome"])
API_ERRORS = Counter(
    "delivery_api_errors", "Requests the apiserver refused or failed, by verb and code", ["verb", "code"]
)
LEADER = Gauge(
    "delivery_leader", "1 while this replica holds the Lease (always 1 without election)", ["lease"]
)
NOTIFICATIONS = Counter(
    "delivery_notifications", "Notifications by result (sent, failed, dropped)", ["result"]
)


def record_measurement(outcome: str) -> None:
    """One analysis measurement taken: Successful, Failed, Inconclusive or Error."""
    MEASUREMENTS.labels(outcome).inc()


def record_api_error(verb: str, code: int) -> None:
    API_ERRORS.labels(verb, str(code)).inc()


class StepClock:
    """Times canary steps from the transitions this replica records. A step that began under
    another replica (before a failover) is not observed rather than observed wrong."""

    STARTS = frozenset(
        {
            Reason.ROLLOUT_UPDATED,
            Reason.STEP_COMPLETED,
            Reason.ANALYSIS_SUCCESSFUL,
            Reason.EXPERIMENT_SUCCESSFUL,
            Reason.RESUMED,
            Reason.RETRIED,
        }
    )
    ENDS = frozenset({Reason.STEP_COMPLETED, Reason.ANALYSIS_SUCCESSFUL, Reason.EXPERIMENT_SUCCESSFUL})
    WITHIN = frozenset({Reason.PAUSED, Reason.ANALYSIS_STARTED, Reason.EXPERIMENT_STARTED})
    """A step's own beginning (its pause, its analysis, its experiment) is inside the step: the
    clock goes on. Any other transition (an abort, a promotion, a deadline) ends the timing unseen."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started: dict[tuple[str, str], float] = {}

    def transition(self, key: tuple[str, str], reason: str) -> float | None:
        """Note a transition of `key`; returns the step's duration when one just completed."""
        TRANSITIONS.labels(reason).inc()
        if reason in self.WITHIN:
            return None
        at = self._clock()
        duration = None
        started = self._started.pop(key, None)
        if reason in self.ENDS and started is not None:
            duration = at - started
            STEP_SECONDS.observe(duration)
        if reason in self.STARTS:
            self._started[key] = at
        return duration


class RolloutPhases(Collector):
    """`delivery_rollouts{phase}` and `delivery_rollout_phase{namespace,name,phase}` from the cache."""

    def __init__(self, rollouts: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._rollouts = rollouts

    def collect(self) -> Iterable[Metric]:
        counts = GaugeMetricFamily("delivery_rollouts", "Rollouts in the cache by phase", labels=["phase"])
        each = GaugeMetricFamily(
            "delivery_rollout_phase",
            "1 for each Rollout's current phase",
            labels=["namespace", "name", "phase"],
        )
        step = GaugeMetricFamily(
            "delivery_rollout_step", "Each Rollout's current step index", labels=["namespace", "name"]
        )
        by_phase: dict[str, int] = {}
        for rollout in self._rollouts():
            metadata, status = rollout["metadata"], rollout.get("status") or {}
            phase = status.get("phase") or "Pending"
            by_phase[phase] = by_phase.get(phase, 0) + 1
            each.add_metric([metadata["namespace"], metadata["name"], phase], 1)
            step.add_metric([metadata["namespace"], metadata["name"]], status.get("currentStepIndex") or 0)
        for phase, count in sorted(by_phase.items()):
            counts.add_metric([phase], count)
        return [counts, each, step]


class CachedObjects(Collector):
    """`delivery_cached_objects{kind}`: what the informers hold, by kind, read at scrape time. A
    shard's memory follows it: with every watch selected by the shard, each holds only its own."""

    def __init__(self, sizes: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._sizes = sizes

    def collect(self) -> Iterable[Metric]:
        cached = GaugeMetricFamily(
            "delivery_cached_objects", "Objects the informers hold, by kind", labels=["kind"]
        )
        by_kind: dict[str, int] = {}
        for kind, size in self._sizes():
            by_kind[kind] = by_kind.get(kind, 0) + size
        for kind, count in sorted(by_kind.items()):
            cached.add_metric([kind], count)
        return [cached]


def watch_rollouts(
    rollouts: Callable[[], Iterable[dict[str, Any]]], sizes: Callable[[], Iterable[tuple[str, int]]]
) -> Callable[[], None]:
    """Expose the phases of `rollouts` and the informers' `sizes` (kind, objects held); returns how
    to stop (a process registers once)."""
    collectors = (RolloutPhases(rollouts), CachedObjects(sizes))
    for collector in collectors:
        REGISTRY.register(collector)

    def stop() -> None:
        for collector in collectors:
            REGISTRY.unregister(collector)

    return stop
