"""Canary steps, and what is in force at a step: the last setting at or before it, as in Argo Rollouts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from strategies.replicas import percent_of


def _check_weight(weight: int) -> None:
    if not 0 <= weight <= 100:
        raise ValueError(f"weight {weight} is not within 0..100")


@dataclass(frozen=True)
class SetWeight:
    weight: int

    def __post_init__(self) -> None:
        _check_weight(self.weight)


@dataclass(frozen=True)
class Pause:
    """Hold the step's traffic until the machine moves on (a duration or a person decides)."""


@dataclass(frozen=True)
class Analysis:
    """Hold the step's traffic until the machine has an analysis outcome."""


@dataclass(frozen=True)
class SetCanaryScale:
    """The canary's size apart from its weight: exactly one of a count, a percentage of the
    Rollout's replicas, or back to matching the traffic weight."""

    replicas: int | None = None
    weight: int | None = None
    match_traffic_weight: bool = False

    def __post_init__(self) -> None:
        chosen = [self.replicas is not None, self.weight is not None, self.match_traffic_weight]
        if chosen.count(True) != 1:
            raise ValueError("SetCanaryScale takes exactly one of replicas, weight, match_traffic_weight")
        if self.replicas is not None and self.replicas < 0:
            raise ValueError(f"replicas {self.replicas} must not be negative")
        if self.weight is not None:
            _check_weight(self.weight)


Step: TypeAlias = SetWeight | Pause | Analysis | SetCanaryScale
_S = TypeVar("_S", SetWeight, SetCanaryScale)


def _last(kind: type[_S], steps: Sequence[Step], index: int) -> _S | None:
    return next((step for step in reversed(steps[: index + 1]) if isinstance(step, kind)), None)


def weight_at(steps: Sequence[Step], index: int) -> int:
    """The canary weight step `index` asks for (0 before any SetWeight)."""
    step = _last(SetWeight, steps, index)
    return 0 if step is None else step.weight


def canary_replicas_at(steps: Sequence[Step], index: int, replicas: int, min_pods: int = 0) -> int:
    """The canary's size at step `index`: its weight's share of `replicas`, rounded up so the
    canary can carry its weight, and when not zero at least `min_pods` (Argo's minPodsPerReplicaSet,
    for availability; at most `replicas`), unless a SetCanaryScale sets a number of replicas."""
    scale = _last(SetCanaryScale, steps, index) or SetCanaryScale(match_traffic_weight=True)
    if scale.replicas is not None:
        return scale.replicas
    weight = weight_at(steps, index) if scale.weight is None else scale.weight
    count = percent_of(replicas, weight, round_up=True)
    return max(count, min(min_pods, replicas)) if count else 0
