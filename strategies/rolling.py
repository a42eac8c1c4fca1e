"""A Deployment-style rolling update: the new revision grows as old ones shrink, within maxSurge and
maxUnavailable, so a release never takes more pods out of service than the user allowed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from strategies.handover import settled
from strategies.replicas import percent_of, shift
from strategies.types import Desired, ReplicaSetState, find

IntOrPercent: TypeAlias = int | str  # 3, or "25%" of spec.replicas
_PERCENT = re.compile(r"[0-9]+%")


def _count(value: IntOrPercent, total: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} must not be negative")
        return value
    if not _PERCENT.fullmatch(value):
        raise ValueError(f"{value!r} is neither a count nor a percentage such as '25%'")
    return percent_of(total, int(value[:-1]), round_up=round_up)


def _as_written(value: IntOrPercent) -> int:
    """The number the user wrote: pods, or the percentage itself."""
    return _count(value, 100, round_up=False)


def fenceposts(max_surge: IntOrPercent, max_unavailable: IntOrPercent, replicas: int) -> tuple[int, int]:
    """(surge, unavailable) in pods, resolved as the Deployment controller does.

    Surge rounds up and unavailable rounds down, so a percentage never makes a rollout less
    available than asked. When rounding leaves both at zero nothing could move, so one pod may be
    unavailable (explicit zeros for both are refused instead). Unavailable never exceeds replicas.
    """
    if isinstance(max_unavailable, str) and _as_written(max_unavailable) > 100:
        raise ValueError(f"maxUnavailable {max_unavailable!r} is more than 100%")
    if _as_written(max_surge) == 0 and _as_written(max_unavailable) == 0:
        raise ValueError("maxSurge and maxUnavailable must not both be zero")
    surge = _count(max_surge, replicas, round_up=True)
    unavailable = _count(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


@dataclass(frozen=True)
class RollingFacts:
    replicas: int  # spec.replicas
    new: str  # the revision of the current pod template
    observed: tuple[ReplicaSetState, ...] = ()  # oldest first: older revisions shrink first
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"replicas {self.replicas} must not be negative")
        fenceposts(self.max_surge, self.max_unavailable, self.replicas)


def decide_rolling(facts: RollingFacts) -> Desired:
    """The new revision toward full size and every other one toward zero, as far as the budgets allow."""
    surge, unavailable = fenceposts(facts.max_surge, facts.max_unavailable, facts.replicas)
    targets = {rs.revision: 0 for rs in facts.observed} | {facts.new: facts.replicas}
    moves = [(find(facts.observed, revision), target) for revision, target in targets.items()]
    return Desired(
        replicas=shift(moves, facts.replicas, surge, unavailable),
        done=settled(facts.observed, targets),
    )
