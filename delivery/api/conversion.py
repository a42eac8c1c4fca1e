"""Component conversion between v1alpha1 and v1beta1: pure, whole objects as plain dicts.

The apiserver stores v1beta1 (the hub) and asks the webhook for whichever version a client
uses, so every object makes the trip v1alpha1 -> v1beta1 -> v1alpha1 (and the reverse) all the
time. That trip must lose nothing, even though each version has fields the other lacks:
conversion moves those fields into an annotation and moves them back on the way home, where the
annotation is removed again. A field goes back only where its parent still is: if a client of
the other version removed `svc`, the stashed `svc.slbSpec` has nowhere to go and is dropped.

Load balancers are renamed, not re-created: `aliyun-slb` in v1alpha1 is `luoji-slb` in v1beta1.
Creating the new load balancer is the Component controller's job; conversion does no I/O.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from delivery.api.component import COMPONENT, HUB_VERSION, ServiceType, ServiceTypeV1Alpha1
from delivery.api.definition import COMPONENT_GROUP

ANNOTATION = f"{COMPONENT_GROUP}/conversion-data"
"""JSON of the spec fields that the object's current version lacks."""
SPOKE_VERSION = "v1alpha1"

Path = tuple[str, ...]
# Spec fields that only one version has, by the version that has them.
ONLY_IN: dict[str, tuple[Path, ...]] = {
    SPOKE_VERSION: (("svc", "slbSpec"),),
    HUB_VERSION: (("release",), ("overrides",)),
}
_SERVICE_TYPES = {ServiceTypeV1Alpha1.ALIYUN_SLB.value: ServiceType.LUOJI_SLB.value}  # spoke -> hub
SERVICE_TYPES: dict[str, dict[str, str]] = {
    HUB_VERSION: _SERVICE_TYPES,
    SPOKE_VERSION: {hub: spoke for spoke, hub in _SERVICE_TYPES.items()},
}
"""Renamed `svc.type` values, by the version they are converted to."""


class ConversionError(ValueError):
    """An object that cannot be converted; the message says why, for the apiserver's client."""


def _version(api_version: object) -> str:
    group, _, version = str(api_version).rpartition("/")
    if group != COMPONENT_GROUP or version not in ONLY_IN:
        raise ConversionError(f"cannot convert {api_version!r}: not a version of {COMPONENT.kind}")
    return version


def convert(obj: Mapping[str, Any], api_version: str) -> dict[str, Any]:
    """`obj` (a whole Component) as `api_version`; v1alpha1 and v1beta1 convert directly, since
    with two versions the path through the hub is one step."""
    if obj.get("kind") != COMPONENT.kind:
        raise ConversionError(f"cannot convert kind {obj.get('kind')!r}: only {COMPONENT.kind}")
    source, target = _version(obj.get("apiVersion")), _version(api_version)
    converted = copy.deepcopy(dict(obj))
    if source == target:
        return converted
    converted["apiVersion"] = api_version
    spec = converted.get("spec")
    if isinstance(spec, dict):
        restored = _take_annotation(converted)
        stashed = _take(spec, ONLY_IN[source])
        _restore(spec, restored, ONLY_IN[target])
        service = spec.get("svc")
        if isinstance(service, dict) and service.get("type") in SERVICE_TYPES[target]:
            service["type"] = SERVICE_TYPES[target][service["type"]]
        _put_annotation(converted, stashed)
    return converted


def _take(spec: dict[str, Any], paths: tuple[Path, ...]) -> dict[str, Any]:
    """Remove the fields at `paths` from `spec`; what was there, as a partial spec."""
    taken: dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path
        owner: Any = spec
        for key in parents:
            owner = owner.get(key) if isinstance(owner, dict) else None
        if isinstance(owner, dict) and leaf in owner:
            target = taken
            for key in parents:
                target = target.setdefault(key, {})
            target[leaf] = owner.pop(leaf)
    return taken


def _restore(spec: dict[str, Any], partial: Mapping[str, Any], paths: tuple[Path, ...]) -> None:
    """Put back the fields at `paths` from `partial`, where their parent still exists. Only known
    paths: the annotation is writable by anyone, and must not become a way to set other fields."""
    for path in paths:
        *parents, leaf = path
        source: Any = partial
        owner: Any = spec
        for key in parents:
            source = source.get(key) if isinstance(source, dict) else None
            owner = owner.get(key) if isinstance(owner, dict) else None
        if isinstance(source, dict) and leaf in source and isinstance(owner, dict):
            owner[leaf] = source[leaf]


def _take_annotation(obj: dict[str, Any]) -> dict[str, Any]:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    if ANNOTATION not in annotations:
        return {}
    text = annotations.pop(ANNOTATION)
    if not annotations:
        del obj["metadata"]["annotations"]
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConversionError(f"metadata.annotations[{ANNOTATION}] is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise ConversionError(f"metadata.annotations[{ANNOTATION}] is not a JSON object")
    return data


def _put_annotation(obj: dict[str, Any], partial: Mapping[str, Any]) -> None:
    if partial:
        metadata = obj.setdefault("metadata", {})
        text = json.dumps(partial, sort_keys=True, separators=(",", ":"))
        metadata.setdefault("annotations", {})[ANNOTATION] = text
