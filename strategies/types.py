"""The words every strategy speaks: observed ReplicaSets in; desired replicas, weight and selectors out."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    """A Service's part in a rollout: the key of `Desired.selectors` and of the applied selectors."""

    STABLE = "stable"  # canary: production traffic not sent to the canary
    CANARY = "canary"  # canary: the weighted share
    ACTIVE = "active"  # blue-green: production traffic
    PREVIEW = "preview"  # blue-green: test traffic to the new revision before promotion


@dataclass(frozen=True)
class ReplicaSetState:
    """One ReplicaSet as observed: `replicas` is its spec, `ready` its available pods (minReadySeconds)."""

    revision: str
    replicas: int = 0
    ready: int = 0

    def settled(self, replicas: int) -> bool:
        """Scaled to `replicas` with every pod ready: nothing about it is still moving."""
        return self.replicas == replicas and self.ready == replicas


def find(observed: Iterable[ReplicaSetState], revision: str) -> ReplicaSetState:
    """The observed ReplicaSet of `revision`; one not created yet counts as scaled to zero."""
    return next((rs for rs in observed if rs.revision == revision), ReplicaSetState(revision))


@dataclass(frozen=True)
class Desired:
    """The next safe move, and whether the current phase has reached its end.

    Every gate in a decision looks at what is already applied and ready, never at what the same
    decision asks for, so the fields may be applied in any order. A revision in `replicas` that is
    not observed yet is a ReplicaSet to create (when its count is above zero).
    """

    replicas: dict[str, int]  # revision -> desired replicas
    canary_weight: int = 0  # 0..100: the canary revision's share; the stable one gets the rest
    selectors: dict[Role, str] = field(default_factory=dict)  # Service role -> revision it selects
    done: bool = False  # the phase's targets are reached: the caller may take the next step
