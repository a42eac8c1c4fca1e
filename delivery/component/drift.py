"""Whether a live object still holds what the controller would apply: no write when it does.

Server-side apply is idempotent, but an apply that changes nothing is still a request, and a
thousand Components reconciled on every watch event would be a thousand of them. So before
applying, the desired object is compared with the live one:

- every field the controller sets must hold in the live object (fields others set, and the
  apiserver's defaults, are not ours to judge); someone who edits a field we set is put back;
- a field the controller stops setting must be taken away, which no comparison of fields can
  see: so each applied object carries the hash of what was applied (`rendered-hash`), and an
  object whose hash differs is applied again, which lets server-side apply remove the field.

The apiserver rewrites resource quantities in canonical form (`0.5` -> `500m`, `1024Mi` -> `1Gi`)
and drops empty strings, zeros and false; the comparison treats those as equal, or a Component
written the long way would be applied on every reconcile.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from delivery.api.definition import COMPONENT_GROUP
from delivery.kube.api import Object

HASH_ANNOTATION = f"{COMPONENT_GROUP}/rendered-hash"
MERGE_KEYS = ("name", "containerPort", "port", "mountPath")
"""Lists whose items carry one of these are compared item by item, as the apiserver merges them."""

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i?|[mkun])?$")
_SUFFIX: dict[str, int | Decimal] = {
    "": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3,
    "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip


def stamped(obj: Object) -> Object:
    """`obj` with the hash of its content in the `rendered-hash` annotation."""
    metadata = obj["metadata"]
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != HASH_ANNOTATION}
    bare = {**obj, "metadata": {**metadata, "annotations": annotations}}
    digest = hashlib.sha256(json.dumps(bare, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {**obj, "metadata": {**metadata, "annotations": {**annotations, HASH_ANNOTATION: digest[:16]}}}


def needs_apply(desired: Object, live: Object | None) -> bool:
    return live is None or not holds(live, desired)


def scaled(desired: Object, live: Object | None) -> tuple[int, int] | None:
    """(rendered, live) replicas when the only rendered field `live` no longer holds is
    `spec.replicas`: someone scaled the workload (`kubectl scale`, an autoscaler the Component
    does not own). Putting that back changes no pod template, so it is told as one restore, not
    as an update of the workload."""
    wanted = (desired.get("spec") or {}).get("replicas")
    found = ((live or {}).get("spec") or {}).get("replicas")
    if live is None or not isinstance(wanted, int) or not isinstance(found, int) or wanted == found:
        return None
    rest = {**desired, "spec": {key: value for key, value in desired["spec"].items() if key != "replicas"}}
    return (wanted, found) if holds(live, rest) else None


def holds(live: Any, desired: Any, *, quantities: bool = False) -> bool:
    """Every field of `desired` has its value in `live`."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            holds(live[key], value, quantities=quantities or key in ("resources", "divisor"))
            if key in live
            else _empty(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        return _list_holds(live, desired, quantities=quantities)
    if quantities and isinstance(desired, str | int) and isinstance(live, str | int):
        wanted = _quantity(desired)
        return wanted == _quantity(live) if wanted is not None else desired == live
    return bool(live == desired)


def _list_holds(live: Any, desired: list[Any], *, quantities: bool) -> bool:
    if not isinstance(live, list):
        return not desired and live is None
    key = _merge_key(desired)
    if key is not None and all(isinstance(item, dict) for item in live):
        by_key = {item.get(key): item for item in live}
        return all(holds(by_key.get(item[key]), item, quantities=quantities) for item in desired)
    return len(live) == len(desired) and all(
        holds(have, want, quantities=quantities) for have, want in zip(live, desired, strict=True)
    )


def _merge_key(items: list[Any]) -> str | None:
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    return next((key for key in MERGE_KEYS if all(key in item for item in items)), None)


def _empty(value: Any) -> bool:
    """What the apiserver leaves out of an object (Go's omitempty)."""
    return value in (None, "", 0, False) or (isinstance(value, list | dict) and not value)


def _quantity(value: str | int) -> Decimal | None:
    match = _QUANTITY.match(str(value))
    if match is None:
        return None
    number, suffix = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation:
        return None
    if suffix and suffix[0] in "eE":
        return amount * Decimal(10) ** int(suffix[1:])
    return amount * _SUFFIX[suffix or ""]
