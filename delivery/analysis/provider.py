"""What every provider gives back: a value for the conditions, or a verdict of its own, or an error."""

from __future__ import annotations

from dataclasses import dataclass

from delivery.analysis.expr import Value
from delivery.api.rollout import AnalysisPhase


class Unmeasurable(Exception):
    """The provider gave no usable value (unreachable, too slow, an error status, garbage): the
    measurement is an Error, which is retried and never passes nor fails a release by itself."""


@dataclass(frozen=True)
class Verdict:
    """A provider that judges by itself (the judge) instead of leaving it to the conditions."""

    phase: AnalysisPhase
    value: Value
    message: str
