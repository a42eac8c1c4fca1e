"""Replica counts: shares of a total, and moving ReplicaSets within a surge and availability budget."""

from __future__ import annotations

from collections.abc import Sequence

from strategies.types import ReplicaSetState


def percent_of(total: int, percent: int, *, round_up: bool) -> int:
    """`percent`% of `total` as a whole number of pods, rounded the way the caller's safety needs."""
    return -(-total * percent // 100) if round_up else total * percent // 100


def shift(
    moves: Sequence[tuple[ReplicaSetState, int]], replicas: int, max_surge: int, max_unavailable: int
) -> dict[str, int]:
    """Move each ReplicaSet toward its target the way a Deployment's rolling update does.

    `moves` pairs each observed ReplicaSet with its target, oldest first (older ones shrink first).
    Growing ones get new pods only while the total stays within `replicas + max_surge`, so a surge
    never exceeds what the cluster was told to expect. Shrinking ones lose their unready pods
    first (they serve nobody, and would otherwise block the rollout), then ready pods only while
    at least `replicas - max_unavailable` stay available. Both budgets are measured on what is
    observed now, so pods this decision adds are never counted as available.
    """
    total = sum(rs.replicas for rs, _ in moves)
    room = max(0, replicas + max_surge - total)
    desired: dict[str, int] = {}
    for rs, target in moves:
        grow = min(room, max(0, target - rs.replicas))
        room -= grow
        desired[rs.revision] = rs.replicas + grow

    shrinking = [(rs, target) for rs, target in moves if target < rs.replicas]
    min_available = replicas - max_unavailable
    ready = {rs.revision: min(rs.ready, rs.replicas) for rs, _ in moves}
    unready_elsewhere = sum(rs.replicas - ready[rs.revision] for rs, target in moves if target >= rs.replicas)
    budget = total - min_available - unready_elsewhere
    for rs, target in shrinking:
        cut = max(0, min(budget, rs.replicas - ready[rs.revision], rs.replicas - target))
        budget -= cut
        desired[rs.revision] -= cut

    budget = sum(ready.values()) - min_available
    for rs, target in shrinking:
        cut = max(0, min(budget, desired[rs.revision] - target))
        budget -= cut
        desired[rs.revision] -= cut
    return desired
