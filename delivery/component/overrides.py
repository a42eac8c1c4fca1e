"""`spec.overrides`: patches applied to rendered objects, for needs no field of the spec covers.

Two forms, as Kubernetes users know them:
- `strategicMerge`: a partial object merged in. Mappings merge key by key (`null` removes a key);
  lists of mappings that all carry one of the usual merge keys (`name`, `containerPort`, `port`,
  `mountPath`) merge item by item, so `containers: [{name: app, ...}]` changes the container
  instead of replacing the list; an item with `$patch: delete` removes the item of that key.
  Other lists are replaced. This is Kubernetes' strategic merge without its per-field schema:
  a field whose Kubernetes merge key is none of those is replaced, which is always the safe side.
- `jsonPatch`: RFC 6902 operations (the `jsonpatch` library), for what a merge cannot say.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import jsonpatch
import jsonpointer

from delivery.api.component import Override
from delivery.component.templating import RenderError
from delivery.kube.api import Object

MERGE_KEYS = ("name", "containerPort", "port", "mountPath")
DIRECTIVE = "$patch"
STANDS_IN = {"Deployment": ("Deployment", "Rollout")}
"""A Component with a `release` renders a Rollout in place of its Deployment, with the same
`spec.template`: overrides written for the Deployment keep applying when a release is added."""


def strategic_merge(target: Any, patch: Any) -> Any:
    """`target` with `patch` merged in (neither is modified)."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(target)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value)
            else:
                merged[key] = _without_directives(value)
        return merged
    if isinstance(target, list) and isinstance(patch, list):
        key = _merge_key(target, patch)
        if key is not None:
            return _merge_items(target, patch, key)
    return _without_directives(patch)


def _merge_key(target: list[Any], patch: list[Any]) -> str | None:
    items = target + patch
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    return next((key for key in MERGE_KEYS if all(key in item for item in items)), None)


def _merge_items(target: list[dict[str, Any]], patch: list[dict[str, Any]], key: str) -> list[Any]:
    merged = [copy.deepcopy(item) for item in target]
    for change in patch:
        index = next((i for i, item in enumerate(merged) if item[key] == change[key]), None)
        if change.get(DIRECTIVE) == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(_without_directives(change))
        else:
            merged[index] = strategic_merge(merged[index], change)
    return merged


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if k != DIRECTIVE and v is not None}
    if isinstance(value, list):
        return [_without_directives(item) for item in value]
    return value


def _identity(obj: Object) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata") or {}
    return (
        obj.get("apiVersion", ""),
        obj.get("kind", ""),
        metadata.get("name", ""),
        metadata.get("namespace", ""),
    )


def apply_overrides(objects: Sequence[Object], overrides: Sequence[Override]) -> list[Object]:
    """`objects` with every override applied in order. An override that matches no object, fails
    to apply, or would rename or move an object is an error: it is a mistake in the spec."""
    result = [copy.deepcopy(obj) for obj in objects]
    for number, override in enumerate(overrides):
        where = f"overrides[{number}] ({override.kind}{' ' + override.name if override.name else ''})"
        kinds = STANDS_IN.get(override.kind, (override.kind,))
        matched = [
            index
            for index, obj in enumerate(result)
            if obj["kind"] in kinds and override.name in (None, obj["metadata"]["name"])
        ]
        if not matched:
            raise RenderError(f"{where} matches no rendered object")
        for index in matched:
            before = result[index]
            after = _patched(before, override, where)
            if not isinstance(after, dict) or _identity(after) != _identity(before):
                raise RenderError(f"{where} must not change an object's apiVersion, kind, name or namespace")
            result[index] = after
    return result


def _patched(obj: Object, override: Override, where: str) -> Any:
    if override.strategic_merge is not None:
        return strategic_merge(obj, override.strategic_merge)
    # A `value` left out (or null: the wire cannot tell them apart) is refused by the library.
    operations = [operation.to_wire() for operation in override.json_patch or ()]
    try:
        return jsonpatch.apply_patch(obj, operations)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        raise RenderError(f"{where}: {error}") from error
