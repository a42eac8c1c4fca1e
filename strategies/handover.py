"""Handing traffic and pods from one revision to another: the gates canary and blue-green share.

Traffic moves only to a revision that can take it, and a revision loses its pods only once no
Service sends it traffic any more. Both gates read what is applied and observed now.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from strategies.types import ReplicaSetState, Role, find


def select(applied: Mapping[Role, str], role: Role, want: str, *, ready: bool, before: str) -> str:
    """`want` once it is ready to take the role's traffic; until then, what the role selects now.

    `before` stands in for a role with no Service yet, so a Service that is about to be created
    never starts on a revision that cannot serve.
    """
    return want if ready else applied.get(role, before)


def resize(rs: ReplicaSetState, target: int, *, may_shrink: bool) -> int:
    """`target` when it grows the ReplicaSet, or when shrinking is safe; until then unchanged."""
    return target if target >= rs.replicas or may_shrink else rs.replicas


def hand_over(
    to: ReplicaSetState,
    away: ReplicaSetState,
    replicas: int,
    *,
    serving: Collection[str],
    allowed: bool,
    traffic_left: bool = True,
) -> tuple[dict[str, int], dict[str, int]]:
    """Everything from `away` to `to`: the targets, and the replicas that are safe now.

    `to` goes to full size at once. `away` keeps its pods until `to` has a full set ready, no
    Service selects it, any traffic selectors do not show has left too (`traffic_left`: a
    router's weight) and the scale-down delay has passed: routers and kube-proxy take a moment
    to stop sending requests.
    """
    gone = to.ready >= replicas and traffic_left and away.revision not in serving and allowed
    return (
        {to.revision: replicas, away.revision: 0},
        {to.revision: replicas, away.revision: resize(away, 0, may_shrink=gone)},
    )


def retire_others(
    observed: Iterable[ReplicaSetState], keep: Collection[str], serving: Collection[str], replicas: int
) -> dict[str, int]:
    """Revisions the rollout no longer needs go to zero once no Service sends them traffic and the
    kept revisions have `replicas` ready pods between them (without a router traffic follows pods,
    so an old revision's ready pods serve until then); until then they keep their pods."""
    observed = tuple(observed)
    covered = sum(rs.ready for rs in observed if rs.revision in keep) >= replicas
    return {
        rs.revision: resize(rs, 0, may_shrink=covered and rs.revision not in serving)
        for rs in observed
        if rs.revision not in keep
    }


def settled(observed: Iterable[ReplicaSetState], targets: Mapping[str, int]) -> bool:
    """Every ReplicaSet at its target with all pods ready, and every other one gone to zero."""
    observed = tuple(observed)
    return all(find(observed, revision).settled(n) for revision, n in targets.items()) and all(
        rs.settled(0) for rs in observed if rs.revision not in targets
    )


def selected(applied: Mapping[Role, str], wanted: Mapping[Role, str]) -> bool:
    """Every Service selects the revision the phase wants (a role with no Service has nothing to do)."""
    return all(applied.get(role, revision) == revision for role, revision in wanted.items())
