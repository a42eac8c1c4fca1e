"""Canary against stable, as Kayenta's judge does: a Mann-Whitney U test and a tolerated effect.

Per-interval samples of latency or error rate are skewed, heavy-tailed and few, so the judge
compares ranks instead of means: the two-sided Mann-Whitney U test says whether the canary's
samples tend to lie above or below the stable's, with no assumption about their distribution.
Significance alone would fail a canary for a difference too small to matter once samples are
many, so the size of the shift counts too: the Hodges-Lehmann estimate (the median of all
pairwise differences canary - stable), relative to the stable median, must exceed the tolerance.

A canary fails when all three hold: the shift goes the bad way for the metric (`direction`), the
test is significant (p < alpha), and the relative shift exceeds the tolerance. Too few samples on
either side give Inconclusive, never Pass: a judge without data must not promote.

Choices the literature leaves open, made here:
- p-values come from the normal approximation with tie correction and continuity correction, as
  R's `wilcox.test(exact=FALSE)` and SciPy's `mannwhitneyu(method="asymptotic")` compute them.
  There is no exact small-sample distribution; the approximation is fair from about 8 samples a
  side, hence the default `min_samples` of 10.
- NaN and infinite samples are dropped before counting (Kayenta drops NaN; an infinite sample
  would make the shift undefined); the counts reported are the samples judged.
- When the stable median is 0 the relative shift is infinite for any nonzero shift, so any
  significant shift the bad way fails, and the message gives the absolute shift instead.
- The Hodges-Lehmann estimate takes n·m differences: fine for per-interval samples (tens or
  hundreds a side), not meant for raw request logs.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby


class Direction(enum.StrEnum):
    """Which way a canary's shift is bad."""

    INCREASE = "increase"  # higher is worse: latency, errors
    DECREASE = "decrease"  # lower is worse: throughput, success ratio
    EITHER = "either"  # any shift is suspect


class Outcome(enum.StrEnum):
    PASS = "Pass"  # noqa: S105 - an outcome, not a password
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


@dataclass(frozen=True)
class JudgeConfig:
    direction: Direction = Direction.INCREASE
    tolerance: float = 0.1  # relative shift of the canary tolerated even when significant: 0.1 = 10%
    alpha: float = 0.05  # significance level of the two-sided test
    min_samples: int = 10  # on each side, after NaN and infinite samples are dropped

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance must be a finite number >= 0, not {self.tolerance}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie between 0 and 1, not {self.alpha}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, not {self.min_samples}")


@dataclass(frozen=True)
class MannWhitney:
    u: float  # pairs (canary, stable) where the canary sample is larger, a tie counting half
    p_value: float  # two-sided


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str  # one line for the rollout status and Events
    canary_count: int
    stable_count: int
    p_value: float | None = None  # None when there were too few samples to test
    shift: float | None = None  # Hodges-Lehmann shift canary - stable, in the metric's unit
    effect: float | None = None  # the shift relative to the stable median: 0.12 = 12% higher


def mann_whitney(canary: Sequence[float], stable: Sequence[float]) -> MannWhitney:
    """The U statistic of the canary and the two-sided p-value (normal approximation, corrected)."""
    n1, n2 = len(canary), len(stable)
    if n1 == 0 or n2 == 0:
        raise ValueError("the Mann-Whitney test needs at least one sample on each side")
    rank_sum, tie_term, position = 0.0, 0, 1
    ordered = sorted([(value, True) for value in canary] + [(value, False) for value in stable])
    for _, group in groupby(ordered, key=lambda sample: sample[0]):
        sides = [is_canary for _, is_canary in group]
        rank_sum += sum(sides) * (position + (len(sides) - 1) / 2)  # tied samples share their mean rank
        tie_term += len(sides) ** 3 - len(sides)
        position += len(sides)
    u = rank_sum - n1 * (n1 + 1) / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:  # every sample is the same value: nothing tells the sides apart
        return MannWhitney(u, 1.0)
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance)
    return MannWhitney(u, min(1.0, math.erfc(z / math.sqrt(2))))


def hodges_lehmann(canary: Sequence[float], stable: Sequence[float]) -> float:
    """The median of all differences canary - stable: a shift estimate robust to outliers."""
    return statistics.median([c - s for c in canary for s in stable])


def judge(canary: Sequence[float], stable: Sequence[float], config: JudgeConfig, metric: str) -> Verdict:
    """Whether the canary's samples of `metric` are worse than the stable's, beyond the tolerance."""
    canary, stable = _finite(canary), _finite(stable)
    counts = f"{len(canary)} vs {len(stable)} samples"
    if min(len(canary), len(stable)) < config.min_samples:
        return Verdict(
            Outcome.INCONCLUSIVE,
            f"too few samples of {metric} to compare canary with stable ({counts}, "
            f"{config.min_samples} needed on each side)",
            len(canary),
            len(stable),
        )
    p_value = mann_whitney(canary, stable).p_value
    shift = hodges_lehmann(canary, stable)
    effect = _relative(shift, statistics.median(stable))
    outcome, reason = _decide(config, p_value, shift, effect)
    message = f"canary {metric} {_difference(shift, effect)} stable{reason} (p={p_value:.3g}, {counts})"
    return Verdict(outcome, message, len(canary), len(stable), p_value, shift, effect)


def _finite(samples: Sequence[float]) -> list[float]:
    return [sample for sample in samples if math.isfinite(sample)]


def _relative(shift: float, baseline: float) -> float:
    if shift == 0:
        return 0.0
    if baseline == 0:
        return math.copysign(math.inf, shift)
    return shift / abs(baseline)


def _decide(config: JudgeConfig, p_value: float, shift: float, effect: float) -> tuple[Outcome, str]:
    """The outcome, and the reason a shift the bad way still passes (empty when it fails or is good)."""
    worse = {
        Direction.INCREASE: shift > 0,
        Direction.DECREASE: shift < 0,
        Direction.EITHER: shift != 0,
    }[config.direction]
    if not worse:
        return Outcome.PASS, ""
    if p_value >= config.alpha:
        return Outcome.PASS, f", not significant at alpha {config.alpha:g}"
    if abs(effect) <= config.tolerance:
        return Outcome.PASS, f", within the {config.tolerance * 100:g}% tolerance"
    return Outcome.FAIL, ""


def _difference(shift: float, effect: float) -> str:
    """'12.0% higher than', or the absolute shift when the stable median is 0."""
    if shift == 0:
        return "equal to"
    amount = f"{abs(effect):.1%}" if math.isfinite(effect) else f"{abs(shift):.3g}"
    return f"{amount} {'higher' if shift > 0 else 'lower'} than"
