"""An autoscaled Component's workload: who owns its replicas, and what its status says. Pure.

While a HorizontalPodAutoscaler scales the workload, the controller applies the workload without
`spec.replicas`. Server-side apply removes a field its manager stops applying unless another
manager owns it too, and a Deployment whose `replicas` is removed is defaulted to 1: a service
running 8 pods would drop to 1 the moment autoscaling is turned on, until the autoscaler raised
it again. So before the first apply without the field, the field is handed over: applied at its
live value (no change, no new generation) under `HANDOVER_MANAGER`, a manager that never writes
again. Then our apply drops only our claim, the value stays, and the autoscaler's scale writes
take the field from the handover manager. Turning autoscaling off applies `replicas` again, with
force, which takes it back from whoever holds it.
"""

from __future__ import annotations

from typing import Any

from delivery.api.component import Autoscaling
from delivery.kube.api import Object

HANDOVER_MANAGER = "delivery-component-handover"
SCALING_ACTIVE = "ScalingActive"


def owns_replicas(live: Object, manager: str) -> bool:
    """Whether `manager`'s applied configuration of `live` holds `spec.replicas`."""
    return any(
        entry.get("manager") == manager
        and entry.get("operation") == "Apply"
        and not entry.get("subresource")
        and "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        for entry in live["metadata"].get("managedFields") or ()
    )


def may_hand_over(desired: Object, live: Object | None) -> bool:
    """Whether applying `desired` may need a handover first: it has a spec without replicas, over
    a live workload that has them (adoption applies metadata only; a new workload has nothing to
    keep). The watch caches drop managedFields, so whose the field is needs `handover`'s read."""
    return (
        live is not None
        and "replicas" in (live.get("spec") or {})
        and "spec" in desired
        and "replicas" not in desired["spec"]
    )


def handover(live: Object, manager: str) -> Object | None:
    """The apply that hands `live`'s replicas over before `manager` applies it without them (`live`
    as read, with its managedFields); None when `manager` does not hold them (the autoscaler's
    first scale took them already, or they were handed over before)."""
    if not owns_replicas(live, manager):
        return None
    metadata = live["metadata"]
    return {
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
        "spec": {"replicas": live["spec"]["replicas"]},
    }


def status(autoscaling: Autoscaling | None, name: str, autoscaler: Object | None) -> dict[str, Any] | None:
    """`status.autoscaling` of the Component: its autoscaler, the range, and the autoscaler's own
    `ScalingActive` condition (None when not autoscaled, which removes the field)."""
    if autoscaling is None:
        return None
    reported: dict[str, Any] = {
        "horizontalPodAutoscaler": name,
        "minReplicas": autoscaling.min_replicas,
        "maxReplicas": autoscaling.max_replicas,
    }
    conditions = ((autoscaler or {}).get("status") or {}).get("conditions") or []
    active = next((c for c in conditions if c.get("type") == SCALING_ACTIVE), None)
    if active is not None and active.get("status") in ("True", "False"):
        reported["scalingActive"] = active["status"] == "True"
        reported["message"] = f"{active.get('reason', '')}: {active.get('message', '')}"[:1024]
    return reported
