"""Bounded history: which old ReplicaSets a Rollout lets go once it keeps more than
`spec.revisionHistoryLimit` of them.

Old ReplicaSets stay, scaled to zero, so that going back to an earlier pod template finds its
ReplicaSet again (the same hash, the same name) and `kubectl delivery get` can show the history.
Without a bound they pile up with every release. The rule is Argo Rollouts'
(`reconcileRevisionHistoryLimit`), so a Rollout moved from Argo keeps the same ReplicaSets:

- the history is every ReplicaSet but the stable revision's and the current one's, and not one
  already being deleted;
- when it is longer than the limit, the oldest (by creation, then name) that exceed it are the
  candidates; a candidate that still has pods, is still being scaled, or that the decision still
  gives pods to (its scale-down delay is pending) is skipped this time, not replaced by a newer
  one. The newest old ReplicaSets are the history worth keeping: deleting a newer one in place
  of a busy older one would leave fewer than the limit once the older one goes too.

Pure, like the decision: the same ReplicaSets give the same answer, so a controller killed
after a deletion decides the rest again and never more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from delivery.kube.api import Object
from delivery.rollout.decide import Decision
from delivery.rollout.revision import HASH_LABEL


@dataclass(frozen=True)
class Entry:
    """One ReplicaSet as the history sees it."""

    revision: str
    replicas: int = 0  # spec.replicas
    pods: int = 0  # status.replicas: pods that still exist, ready or not, terminating or not
    observed: bool = True  # its controller has seen its latest spec: `pods` is not stale
    deleting: bool = False  # a deletionTimestamp: already on its way

    @property
    def idle(self) -> bool:
        """Scaled to zero, with no pod left, as its controller last saw it: deleting it takes nothing."""
        return self.replicas == 0 and self.pods == 0 and self.observed


def expired(
    history: Sequence[Entry],
    *,
    limit: int,
    stable: str | None,
    current: str | None,
    desired: Mapping[str, int],
) -> tuple[str, ...]:
    """The revisions to delete, oldest first, of `history` (oldest first); `desired` is what the
    decision gives each revision, so one it still gives pods to is not deleted."""
    kept = {stable, current}
    old = [entry for entry in history if entry.revision not in kept and not entry.deleting]
    excess = old[: max(0, len(old) - limit)]
    return tuple(entry.revision for entry in excess if entry.idle and desired.get(entry.revision, 0) == 0)


def entry_of(replicaset: Object) -> Entry:
    metadata = replicaset["metadata"]
    status = replicaset.get("status") or {}
    return Entry(
        revision=metadata["labels"][HASH_LABEL],
        replicas=replicaset["spec"].get("replicas", 1),  # the apiserver's default when unset
        pods=status.get("replicas", 0),
        observed=status.get("observedGeneration", 0) >= metadata.get("generation", 1),
        deleting=bool(metadata.get("deletionTimestamp")),
    )


def beyond_limit(replicasets: Iterable[Object], limit: int, decision: Decision) -> list[Object]:
    """The Rollout's ReplicaSets that `decision` leaves beyond `limit`, oldest first."""
    ordered = sorted(
        (rs for rs in replicasets if HASH_LABEL in rs["metadata"].get("labels", {})),
        key=lambda rs: (rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]),
    )
    by_revision = {rs["metadata"]["labels"][HASH_LABEL]: rs for rs in ordered}
    doomed = expired(
        [entry_of(rs) for rs in by_revision.values()],
        limit=limit,
        stable=decision.memory.stable,
        current=decision.memory.revision,
        desired=decision.desired.replicas,
    )
    return [by_revision[revision] for revision in doomed]
