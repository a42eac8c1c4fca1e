"""The Deployment a workloadRef names, beside the Rollout that took its pod template over: how many
replicas it keeps (Argo Rollouts' `workloadRef.scaleDown`). Pure, so the controller only writes it."""

from __future__ import annotations

from delivery.api.rollout import ScaleDown


def referenced_replicas(mode: ScaleDown, *, healthy: bool, current: int, replicas: int, ready: int) -> int:
    """The Deployment's replicas after this reconcile, from `current`.

    `never` leaves it; `onsuccess` takes it to zero once the Rollout is Healthy; `progressively`
    gives up one of its pods for each ready pod of the Rollout (of `replicas`), so the two together
    keep a full set, and goes to zero once Healthy. It only ever shrinks: pods the Rollout lost
    later are the Rollout's to replace, not the Deployment's.
    """
    if mode is ScaleDown.NEVER:
        return current
    if healthy:
        return 0
    if mode is ScaleDown.PROGRESSIVELY:
        return min(current, max(0, replicas - ready))
    return current
