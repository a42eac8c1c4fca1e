"""Shards: which objects a controller started with `--controller-id` watches, and how the objects it
makes for its parents are labelled so that it watches those too, and no other shard does. Pure.

A parent (a Rollout, a Component) is in the shard its `delivery.luojilab.com/controller-id` label
names; without the label it is in the default shard (a controller started without an id). Every
child a controller makes for a parent (ReplicaSets, analysis Jobs, experiment Services, tracked
copies, what a Component renders) carries its parent's label in its own metadata (never in a pod
template: a pod's labels and its template's hash stay as they were, so nothing restarts), and every
watch adds the shard's selector to its own, so N shards each cache about 1/N of the objects.

A child the watch cannot see (made by a version before children were labelled, or left with its
old shard's label when its parent moved) is found by `needs_relabel`: the parent's status records
the shard its children were last labelled for (`RECORDED`), and a controller that finds another
value there lists that parent's children once, unselected by shard, and relabels them before it
decides anything for that parent. A steady restart reads the field from the cached parents: no
request per parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABEL = "delivery.luojilab.com/controller-id"
RECORDED = "childrenShard"
"""The status field of a parent: the shard (`""`: the default one) its children were last labelled for."""

Object = dict[str, Any]


def selector(controller_id: str | None) -> str:
    """The label selector of a shard's objects; the default shard's selects the unlabelled ones."""
    return f"{LABEL}={controller_id}" if controller_id else f"!{LABEL}"


def of_children(base: str, controller_id: str | None) -> str:
    """A child watch's selector: its own (`base`) and the shard's (a comma is AND)."""
    return f"{base},{selector(controller_id)}"


def of(obj: Mapping[str, Any]) -> str | None:
    """The shard an object is in (None: the default one)."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL) or None


def labelled(labels: Mapping[str, str], shard: str | None) -> dict[str, str]:
    """A child's labels with its parent's shard: set to it, or taken away for the default shard
    (whatever a template or the pod labels said: a child is where its parent is)."""
    kept = {key: value for key, value in labels.items() if key != LABEL}
    return {**kept, LABEL: shard} if shard else kept


def relabelled(child: Mapping[str, Any], shard: str | None) -> Object | None:
    """The merge patch that puts `child` in `shard`; None when it is there already."""
    if of(child) == shard:
        return None
    return {"metadata": {"labels": {LABEL: shard}}}


def recorded(shard: str | None) -> str:
    """What a parent's status records once its children are labelled for `shard`."""
    return shard or ""


def needs_relabel(status: Mapping[str, Any], shard: str | None) -> bool:
    """Whether a parent's children must be listed and relabelled before anything is decided for it:
    its status does not say they were labelled for this shard. A parent with no status at all was
    never reconciled, so nothing made it children (but a first reconcile killed after making one:
    its controller learns of that one by the conflict of making it again)."""
    if not status:
        return False
    return status.get(RECORDED) != recorded(shard)
