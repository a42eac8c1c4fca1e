"""Conditions and Events: how every transition is told to people and pipelines, in one place.

Conditions follow the Kubernetes conventions that `kubectl wait` relies on: `lastTransitionTime`
changes only when the status flips, and each carries the `observedGeneration` it was computed for.

Events get deterministic names (`<object>.<uid>.<sequence>`): a controller killed between writing
an Event and writing the status re-decides the same transition after restart, re-creates the same
Event, is told it already exists, and moves on, so no transition is reported twice or lost. The
uid (its first 8 characters) tells apart an object deleted and created again under the same name,
whose transitions count from 1 again: without it, its Events would be taken as written already.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from typing import Any

from delivery.kube.api import Kind, Kube, KubeError, Object

EVENT = Kind("v1", "Event", "events")
COMPONENT_NAME = "delivery"
NAME_LIMIT = 253


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""


def merge_conditions(
    current: list[dict[str, Any]], updates: list[Condition], generation: int, at: str
) -> list[dict[str, Any]]:
    """`current` with `updates` applied; untouched conditions are kept as they are."""
    by_type = {condition["type"]: dict(condition) for condition in current}
    for update in updates:
        status = "True" if update.status else "False"
        previous = by_type.get(update.type)
        since = previous["lastTransitionTime"] if previous and previous.get("status") == status else at
        by_type[update.type] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": since,
            "observedGeneration": generation,
        }
    return sorted(by_type.values(), key=lambda condition: str(condition["type"]))


@dataclass(frozen=True)
class EventNote:
    """One Kubernetes Event to record about an object."""

    reason: str
    message: str
    warning: bool = False


def sequence_of(*parts: object) -> int:
    """A number that names an Event by what it reports (for Events that are not numbered transitions),
    so reporting the same change twice is a no-op."""
    return int(hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def event_name(involved: Object, sequence: int) -> str:
    """`<name>.<uid>.<sequence>`, the name cut short if need be (an Event's name is at most 253)."""
    metadata = involved["metadata"]
    suffix = f".{metadata['uid'][:8]}.{sequence:08x}"
    name: str = metadata["name"]
    return name[: NAME_LIMIT - len(suffix)] + suffix


async def record_event(
    kube: Kube, involved: Object, sequence: int, note: EventNote, instance: str = ""
) -> bool:
    """Create the Event for transition number `sequence` of `involved`, once; False if it already was.
    `instance` names the replica that wrote it (the Event's reportingInstance)."""
    metadata = involved["metadata"]
    stamp = now()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(involved, sequence), "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata.get("resourceVersion", ""),
        },
        "reason": note.reason,
        "message": note.message,
        "type": "Warning" if note.warning else "Normal",
        "source": {"component": COMPONENT_NAME},
        "reportingComponent": COMPONENT_NAME,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    try:
        await kube.create(EVENT, metadata["namespace"], event)
    except KubeError as error:
        if error.status != 409:  # AlreadyExists: written before a restart
            raise
        return False
    return True
