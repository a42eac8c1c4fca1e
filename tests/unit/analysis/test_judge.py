"""The judge: hand-computed statistics, then canaries that pass, fail, or cannot be judged."""

from __future__ import annotations

import math
import random

import pytest

from delivery.analysis.judge import (
    Direction,
    JudgeConfig,
    Outcome,
    hodges_lehmann,
    judge,
    mann_whitney,
)


def _normal(seed: int, mean: float, deviation: float, count: int = 40) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, deviation) for _ in range(count)]


@pytest.mark.parametrize(
    ("canary", "stable", "u", "p_value"),
    [
        # Ranks 1, 2, 3 for the canary: R = 6, U = 6 - 3·4/2 = 0; mean 4.5, variance 3·3·7/12 = 5.25,
        # z = (4.5 - 0.5)/√5.25 = 1.7457, p = erfc(z/√2) = 0.08086 (R: wilcox.test(exact=FALSE)).
        pytest.param([1, 2, 3], [4, 5, 6], 0.0, 0.0808556, id="separated"),
        # Ranks 1, 3, 3 (the three 2s share ranks 2-4): U = 7 - 6 = 1; ties 3 and 2 give
        # Σ(t³-t) = 30, variance 9/12·(7 - 30/30) = 4.5, z = (3.5 - 0.5)/√4.5 = √2, p = erfc(1).
        pytest.param([1, 2, 2], [2, 3, 3], 1.0, 0.1572992, id="ties"),
        # Ranks 1, 2, 3.5, 5.5, 7.5: U = 19.5 - 15 = 4.5; three ties of 2 give Σ(t³-t) = 18,
        # variance 25/12·(11 - 18/90) = 22.5, z = (8 - 0.5)/√22.5 = 1.5811, p = 0.1138.
        pytest.param([1, 2, 3, 4, 5], [3, 4, 5, 6, 7], 4.5, 0.1138463, id="overlapping"),
        # Every sample equal: U is its mean and nothing tells the sides apart.
        pytest.param([5, 5, 5], [5, 5, 5], 4.5, 1.0, id="all-equal"),
    ],
)
def test_mann_whitney_by_hand(canary: list[float], stable: list[float], u: float, p_value: float) -> None:
    test = mann_whitney(canary, stable)
    assert test.u == u
    assert test.p_value == pytest.approx(p_value, abs=1e-7)
    mirrored = mann_whitney(stable, canary)
    assert mirrored.u == len(canary) * len(stable) - u
    assert mirrored.p_value == pytest.approx(test.p_value)


def test_hodges_lehmann_is_the_median_pairwise_difference() -> None:
    # Differences canary - stable: -5, -4, -4, -3, -3, -3, -2, -2, -1.
    assert hodges_lehmann([1, 2, 3], [4, 5, 6]) == -3
    assert hodges_lehmann([10, 11, 1000], [0, 1, 2]) == 10  # one outlier does not move it


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_same_distribution_passes(seed: int) -> None:
    verdict = judge(_normal(seed, 100, 10), _normal(seed + 100, 100, 10), JudgeConfig(), "latency")
    assert verdict.outcome is Outcome.PASS
    assert verdict.p_value is not None
    assert verdict.p_value > 0.05


@pytest.mark.parametrize(
    ("canary_mean", "direction", "outcome"),
    [
        pytest.param(130, Direction.INCREASE, Outcome.FAIL, id="higher-is-bad"),
        pytest.param(130, Direction.DECREASE, Outcome.PASS, id="higher-is-good"),
        pytest.param(130, Direction.EITHER, Outcome.FAIL, id="higher-is-suspect"),
        pytest.param(70, Direction.INCREASE, Outcome.PASS, id="lower-is-good"),
        pytest.param(70, Direction.DECREASE, Outcome.FAIL, id="lower-is-bad"),
        pytest.param(70, Direction.EITHER, Outcome.FAIL, id="lower-is-suspect"),
    ],
)
def test_a_shift_fails_only_in_the_bad_direction(
    canary_mean: float, direction: Direction, outcome: Outcome
) -> None:
    verdict = judge(
        _normal(1, canary_mean, 10), _normal(2, 100, 10), JudgeConfig(direction=direction), "latency"
    )
    assert verdict.outcome is outcome
    assert verdict.p_value is not None
    assert verdict.p_value < 1e-6
    assert verdict.effect == pytest.approx((canary_mean - 100) / 100, abs=0.06)


def test_tolerance_absorbs_a_small_significant_shift() -> None:
    canary, stable = _normal(1, 103, 1), _normal(2, 100, 1)
    tolerant = judge(canary, stable, JudgeConfig(tolerance=0.1), "latency")
    assert tolerant.outcome is Outcome.PASS
    assert tolerant.p_value is not None
    assert tolerant.p_value < 1e-6
    assert tolerant.message.startswith("canary latency 3.")
    assert "% higher than stable, within the 10% tolerance (p=" in tolerant.message
    assert judge(canary, stable, JudgeConfig(tolerance=0.01), "latency").outcome is Outcome.FAIL


def test_an_insignificant_shift_passes_and_says_so() -> None:
    verdict = judge([2, 3, 4, 5, 6], [1, 2, 3, 4, 5], JudgeConfig(min_samples=5), "latency")
    assert verdict.outcome is Outcome.PASS
    assert ", not significant at alpha 0.05 (p=" in verdict.message


def test_the_message_names_metric_size_p_value_and_counts() -> None:
    stable = [float(value) for value in range(100, 130)]  # median 114.5
    canary = [value + 30 for value in stable]  # shifted by 30: 26.2% of the stable median
    verdict = judge(canary, stable, JudgeConfig(), "p95 latency")
    assert verdict.outcome is Outcome.FAIL
    assert verdict.shift == 30
    assert verdict.message == (
        f"canary p95 latency 26.2% higher than stable (p={verdict.p_value:.3g}, 30 vs 30 samples)"
    )


def test_too_few_samples_is_inconclusive() -> None:
    verdict = judge(_normal(1, 500, 1, count=9), _normal(2, 100, 1), JudgeConfig(min_samples=10), "latency")
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert (verdict.canary_count, verdict.stable_count) == (9, 40)
    assert verdict.p_value is None
    assert verdict.message == (
        "too few samples of latency to compare canary with stable (9 vs 40 samples, 10 needed on each side)"
    )


def test_nan_and_infinite_samples_are_dropped_before_counting() -> None:
    canary = [*_normal(1, 100, 1, count=8), math.nan, math.inf]
    verdict = judge(canary, _normal(2, 100, 1), JudgeConfig(min_samples=10), "latency")
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.canary_count == 8


def test_identical_constant_series_pass() -> None:
    verdict = judge([0.2] * 20, [0.2] * 20, JudgeConfig(direction=Direction.EITHER), "error rate")
    assert verdict.outcome is Outcome.PASS
    assert (verdict.p_value, verdict.shift, verdict.effect) == (1.0, 0.0, 0.0)
    assert verdict.message == "canary error rate equal to stable (p=1, 20 vs 20 samples)"


def test_constant_series_apart_fail() -> None:
    """Two tie groups only: the tie correction keeps the variance above zero."""
    verdict = judge([2.0] * 20, [1.0] * 20, JudgeConfig(), "latency")
    assert verdict.outcome is Outcome.FAIL
    assert verdict.effect == 1.0


def test_a_stable_median_of_zero_makes_any_significant_shift_count() -> None:
    verdict = judge([0.01] * 20, [0.0] * 20, JudgeConfig(tolerance=0.5), "error rate")
    assert verdict.outcome is Outcome.FAIL
    assert verdict.effect == math.inf
    assert verdict.message.startswith("canary error rate 0.01 higher than stable (p=")


@pytest.mark.parametrize(
    "settings",
    [{"tolerance": -0.1}, {"tolerance": math.nan}, {"alpha": 0}, {"alpha": 1.5}, {"min_samples": 0}],
)
def test_config_rejects_nonsense(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        JudgeConfig(**settings)  # type: ignore[arg-type]
