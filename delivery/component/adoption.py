"""What to apply to each rendered object, given what already runs: adoption and immutable fields.

Old services must move under the controller without noticing. So an existing object with the
name of a rendered one, not yet owned by the Component, is *adopted*: the controller applies only
its labels and owner reference (and records the Component's generation in an annotation), and
leaves its spec alone, so a Deployment's pod template, and with it its pods, stay as they are.
While the Component keeps that generation, it stays so. The first change of the Component after
adoption renders the objects in full: that is a release, which the person changing it asked for.

What Kubernetes never lets change is kept in every case: a workload's selector (immutable) stays
the live one, its pod template keeps the selector's labels, and the Services the Component renders
select the pods by that same selector, so an adopted workload's pods never lose their traffic.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from delivery.api.definition import COMPONENT_GROUP
from delivery.component.drift import HASH_ANNOTATION, stamped
from delivery.kube.api import Object

ADOPTED_ANNOTATION = f"{COMPONENT_GROUP}/adopted-generation"
"""On an adopted object: the Component generation that adopted it (its spec untouched till then)."""
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Rollout"})
ObjectId = tuple[str, str]  # kind, name


def object_id(obj: Object) -> ObjectId:
    return obj["kind"], obj["metadata"]["name"]


def owned_by(obj: Object, uid: str) -> bool:
    return any(reference.get("uid") == uid for reference in obj["metadata"].get("ownerReferences") or ())


def controller_of(obj: Object) -> str | None:
    """The kind and name of the object's controller, if any."""
    for reference in obj["metadata"].get("ownerReferences") or ():
        if reference.get("controller"):
            return f"{reference['kind']} {reference['name']}"
    return None


class Conflict(ValueError):
    """A rendered object's name is taken by an object another controller owns: not ours to take."""


@dataclass(frozen=True)
class Desired:
    obj: Object
    adopting: bool = False
    """The live object is taken over by this apply (its spec is left alone)."""
    replacing: bool = False
    """The adopted object is rendered in full for the first time: what its former managers set
    must go too (a legacy container, a port), which server-side apply alone would keep."""


def desired(
    rendered: Sequence[Object], live: Mapping[ObjectId, Object], uid: str, generation: int
) -> list[Desired]:
    """What to apply for each rendered object (stamped with its hash), given the live objects."""
    selector = _live_selector(rendered, live)
    result = []
    for obj in rendered:
        current = live.get(object_id(obj))
        if current is not None and not owned_by(current, uid) and controller_of(current) is not None:
            raise Conflict(
                f"{obj['kind']} {obj['metadata']['name']} is controlled by {controller_of(current)}"
            )
        adopting = current is not None and not owned_by(current, uid)
        adopted_at = _adopted_at(current) if current is not None else None
        if adopting or adopted_at == generation:
            result.append(Desired(stamped(_metadata_only(obj, generation)), adopting))
        else:
            result.append(Desired(stamped(_keep_selector(obj, selector)), replacing=adopted_at is not None))
    return result


def replacement(desired: Object, live: Object) -> Object:
    """The whole object for an update (PUT) that makes `live` exactly `desired`: its spec replaced,
    our metadata merged in, the adoption mark dropped, and every field manager's record cleared, so
    the apply that follows leaves the controller the only owner of its fields. For an adopted object
    rendered in full, and for one whose former managers' fields server-side apply would keep."""
    metadata = {**live["metadata"]}
    annotations = {**(metadata.get("annotations") or {}), **(desired["metadata"].get("annotations") or {})}
    annotations.pop(ADOPTED_ANNOTATION, None)
    # No hash: if the controller dies before the apply that follows, the next reconcile sees the
    # object unstamped and applies, so the controller owns its fields again.
    annotations.pop(HASH_ANNOTATION, None)
    metadata.update(
        labels={**(metadata.get("labels") or {}), **(desired["metadata"].get("labels") or {})},
        annotations=annotations,
        ownerReferences=desired["metadata"].get("ownerReferences", metadata.get("ownerReferences", [])),
        managedFields=[{}],  # the documented way to clear managedFields
    )
    body = {key: value for key, value in live.items() if key != "status"}
    replaced = {**body, **{key: value for key, value in desired.items() if key != "metadata"}}
    replaced["metadata"] = metadata
    live_replicas = (live.get("spec") or {}).get("replicas")
    if "spec" in desired and "replicas" not in desired["spec"] and live_replicas is not None:
        # An autoscaled workload renders no replicas: the autoscaler's count stays (a PUT without
        # the field would default it to 1).
        replaced["spec"] = {**desired["spec"], "replicas": live_replicas}
    return replaced


def _adopted_at(obj: Object) -> int | None:
    value = (obj["metadata"].get("annotations") or {}).get(ADOPTED_ANNOTATION)
    return int(value) if value and value.isdigit() else None


def _metadata_only(obj: Object, generation: int) -> Object:
    metadata = obj["metadata"]
    kept = {
        key: metadata[key] for key in ("name", "namespace", "labels", "ownerReferences") if key in metadata
    }
    annotations = {**(metadata.get("annotations") or {}), ADOPTED_ANNOTATION: str(generation)}
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {**kept, "annotations": annotations},
    }


def _live_selector(rendered: Sequence[Object], live: Mapping[ObjectId, Object]) -> dict[str, str] | None:
    """The live workload's selector labels, when a workload of the rendered kind and name runs."""
    for obj in rendered:
        current = live.get(object_id(obj))
        if obj["kind"] in WORKLOAD_KINDS and current is not None:
            labels: dict[str, str] | None = (current["spec"].get("selector") or {}).get("matchLabels")
            return labels
    return None


def _keep_selector(obj: Object, selector: dict[str, str] | None) -> Object:
    if selector is None:
        return obj
    spec: dict[str, Any] | None = obj.get("spec")
    if obj["kind"] in WORKLOAD_KINDS and spec is not None:
        kept = copy.deepcopy(obj)
        kept["spec"]["selector"] = {"matchLabels": dict(selector)}
        template_metadata = kept["spec"]["template"].setdefault("metadata", {})
        template_metadata["labels"] = {**template_metadata.get("labels", {}), **selector}
        return kept
    if obj["kind"] == "Service" and spec is not None and "selector" in spec:
        kept = copy.deepcopy(obj)
        kept["spec"]["selector"] = dict(selector)
        return kept
    return obj
