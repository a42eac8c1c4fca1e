"""A toy cluster for simulated reconciles: it applies a Desired as a controller would and lets pods
become ready a few at a time, so property tests can walk a strategy from any start to its end."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st

from strategies import Desired, ReplicaSetState, Role

# Enough examples to find an unsafe order, few enough for the whole folder to run in seconds.
modest = settings(max_examples=80, deadline=None)

TICKS = 200  # more reconciles than any generated rollout needs to finish


@dataclass
class Cluster:
    replicasets: dict[str, ReplicaSetState]  # in creation order, oldest first
    weight: int = 0
    selectors: dict[Role, str] = field(default_factory=dict)  # a role not here has no Service
    quiet: int = 0  # reconciles since the traffic last moved

    @property
    def observed(self) -> tuple[ReplicaSetState, ...]:
        return tuple(self.replicasets.values())

    def ready(self) -> int:
        return sum(rs.ready for rs in self.observed)

    def replicas(self) -> int:
        return sum(rs.replicas for rs in self.observed)

    def apply(self, desired: Desired) -> None:
        """Scale, weight and select as told; a scale-down removes unready pods first, as a ReplicaSet does."""
        for revision, replicas in desired.replicas.items():
            ready = self.replicasets.get(revision, ReplicaSetState(revision)).ready
            self.replicasets[revision] = ReplicaSetState(revision, replicas, min(ready, replicas))
        selectors = {role: desired.selectors[role] for role in self.selectors}
        moved = (desired.canary_weight, selectors) != (self.weight, self.selectors)
        self.quiet = 0 if moved else self.quiet + 1
        self.weight, self.selectors = desired.canary_weight, selectors

    def ripen(self, pods: int) -> None:
        """Up to `pods` more pods of each ReplicaSet become ready."""
        for revision, rs in self.replicasets.items():
            self.replicasets[revision] = ReplicaSetState(
                revision, rs.replicas, min(rs.replicas, rs.ready + pods)
            )


class Facts(Protocol):
    @property
    def replicas(self) -> int: ...


F = TypeVar("F", bound=Facts)


def reconcile(
    facts: F,
    cluster: Cluster,
    *,
    decide: Callable[[F], Desired],
    advance: Callable[[F], F | None],
    observe: Callable[[F, Cluster], F],
    pace: int,
    floor: int,
) -> F:
    """A controller in miniature: decide, apply, let `pace` more pods per ReplicaSet become ready,
    and when a phase is done take the next one (`advance` gives None once there is none left).
    Ready pods never drop below `floor` (nor below what was ready, if that was less)."""
    for _ in range(TICKS):
        desired = decide(facts)
        ready = cluster.ready()
        cluster.apply(desired)
        assert cluster.ready() >= min(ready, floor)
        if desired.done:
            following = advance(facts)
            if following is None:
                return facts
            facts = following
        cluster.ripen(pace)
        facts = observe(facts, cluster)
    pytest.fail(f"no convergence: {facts}")


@st.composite
def replicaset(draw: st.DrawFn, revision: str, most: int) -> ReplicaSetState:
    replicas = draw(st.integers(0, most))
    return ReplicaSetState(revision, replicas, draw(st.integers(0, replicas)))


def selectors(roles: Collection[Role], revisions: list[str]) -> st.SearchStrategy[dict[Role, str]]:
    """Services for some of the roles (a missing role has no Service), each selecting any revision."""
    return st.fixed_dictionaries({}, optional={role: st.sampled_from(revisions) for role in roles})
