"""Metrics computed by the controller: step durations and rollouts by phase from the cache."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from delivery.machine import Reason
from delivery.ops import metrics


def test_a_step_lasts_from_one_transition_to_its_completion() -> None:
    now = [100.0]
    clock = metrics.StepClock(lambda: now[0])
    key = ("shop", "web")
    assert clock.transition(key, Reason.ROLLOUT_UPDATED) is None
    now[0] = 130.0
    assert clock.transition(key, Reason.STEP_COMPLETED) == 30.0
    now[0] = 135.0
    assert clock.transition(key, Reason.STEP_COMPLETED) == 5.0


def test_a_pause_or_an_analysis_step_is_timed_through_its_own_beginning() -> None:
    """A step's pause begins with the previous step's end, in the same reconcile: the clock goes on."""
    now = [0.0]
    clock = metrics.StepClock(lambda: now[0])
    key = ("shop", "web")
    for reason in (Reason.ROLLOUT_UPDATED, Reason.STEP_COMPLETED, Reason.PAUSED):
        clock.transition(key, reason)
    now[0] = 2.0
    assert clock.transition(key, Reason.STEP_COMPLETED) == 2.0  # pause 2s
    assert clock.transition(key, Reason.ANALYSIS_STARTED) is None
    now[0] = 62.0
    assert clock.transition(key, Reason.ANALYSIS_SUCCESSFUL) == 60.0
    assert clock.transition(key, Reason.ABORTED) is None
    assert clock.transition(key, Reason.STEP_COMPLETED) is None  # not timed past an abort


def test_a_step_begun_elsewhere_is_not_timed() -> None:
    clock = metrics.StepClock(lambda: 50.0)
    assert clock.transition(("shop", "web"), Reason.STEP_COMPLETED) is None  # began before a failover


def test_rollouts_by_phase_come_from_the_cache() -> None:
    cached: list[dict[str, Any]] = [
        {
            "metadata": {"namespace": "shop", "name": "web"},
            "status": {"phase": "Paused", "currentStepIndex": 1},
        },
        {"metadata": {"namespace": "shop", "name": "api"}, "status": {"phase": "Healthy"}},
        {"metadata": {"namespace": "shop", "name": "new"}},
    ]
    registry = CollectorRegistry()
    registry.register(metrics.RolloutPhases(lambda: cached))
    text = generate_latest(registry).decode()
    assert 'delivery_rollouts{phase="Paused"} 1.0' in text
    assert 'delivery_rollouts{phase="Pending"} 1.0' in text
    assert 'delivery_rollout_phase{name="web",namespace="shop",phase="Paused"} 1.0' in text
    assert 'delivery_rollout_step{name="web",namespace="shop"} 1.0' in text


def test_measurements_are_counted_by_outcome() -> None:
    before = metrics.MEASUREMENTS.labels("Failed")._value.get()
    metrics.record_measurement("Failed")
    assert metrics.MEASUREMENTS.labels("Failed")._value.get() == before + 1
