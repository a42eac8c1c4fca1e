"""Ephemeral pod metadata (`canaryMetadata`/`stableMetadata`, `previewMetadata`/`activeMetadata`)
and the injected anti-affinity kept right on ReplicaSets that already exist, as Argo Rollouts keeps them.

Pure: which metadata each ReplicaSet's pods should carry, and the merge patches that get them there.
The roles, as Argo's: while a release runs, the current revision's pods carry the canary (preview)
metadata and the stable revision's the stable (active) metadata; once the current revision is the
stable one (promoted, or the first), it carries the stable metadata; every other ReplicaSet carries
none. What was injected is remembered in an annotation of the ReplicaSet, so only our own keys are
ever removed (a sidecar injector's labels stay).

A move is made in three steps, each a difference only, so a kill between any two resumes:
1. the ReplicaSet's pod template (a template change makes no ReplicaSet replace its pods: only pods
   made from now on are made with it);
2. once the ReplicaSet controller has seen that template (`status.observedGeneration`), so no pod of
   the old template is still being made, its pods are listed and each one that differs is patched;
3. the annotation says what was injected: until it says the desired metadata, step 2 is redone.
A ReplicaSet with no pods needs no step 2, and takes steps 1 and 3 in one patch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from delivery.api.rollout import AntiAffinity, PodMetadata
from delivery.kube.api import Object
from delivery.rollout.affinity import resynced
from delivery.rollout.revision import HASH_LABEL

EPHEMERAL_ANNOTATION = "delivery.luojilab.com/ephemeral-metadata"
"""On a ReplicaSet: the labels and annotations injected into its pods (Argo's
`rollout.argoproj.io/ephemeral-metadata`), JSON; absent when none are."""

Injected = dict[str, dict[str, str]]  # {"labels": {...}, "annotations": {...}}, either may be absent


def injected(metadata: PodMetadata | None) -> Injected | None:
    """`metadata` as it is recorded and compared; None when it injects nothing."""
    if metadata is None:
        return None
    wire = {
        key: dict(value)
        for key, value in (("labels", metadata.labels), ("annotations", metadata.annotations))
        if value
    }
    return wire or None


def roles(
    revisions: Mapping[str, Object],
    *,
    current: str,
    stable: str | None,
    new: PodMetadata | None,
    steady: PodMetadata | None,
) -> dict[str, Injected | None]:
    """What each ReplicaSet (by revision) should have injected. `new`: canaryMetadata or
    previewMetadata; `steady`: stableMetadata or activeMetadata."""
    wanted: dict[str, Injected | None] = dict.fromkeys(revisions)
    if stable is None or stable == current:  # released (or the first): no canary any more
        wanted[current] = injected(steady)
    else:
        wanted[current] = injected(new)
        wanted[stable] = injected(steady)
    return wanted


def recorded(replicaset: Object) -> Injected | None:
    """What the ReplicaSet's annotation says was injected; an unreadable one as none (Argo's too)."""
    text = (replicaset["metadata"].get("annotations") or {}).get(EPHEMERAL_ANNOTATION)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def encoded(metadata: Injected | None) -> str | None:
    return json.dumps(metadata, sort_keys=True, separators=(",", ":")) if metadata else None


def moved(metadata: Mapping[str, Any], had: Injected | None, wanted: Injected | None) -> dict[str, Any]:
    """The merge patch of an object's `metadata` (a pod's, a pod template's) from what `had`
    injected to what `wanted` injects: wanted keys set, keys only `had` injected removed, every
    other key left alone; empty when it already holds."""
    patch: dict[str, Any] = {}
    for part in ("labels", "annotations"):
        present = metadata.get(part) or {}
        give = (wanted or {}).get(part) or {}
        changes: dict[str, str | None] = {
            key: value for key, value in give.items() if present.get(key) != value
        }
        for key in (had or {}).get(part) or {}:
            if key not in give and key in present:
                changes[key] = None
        if changes:
            patch[part] = changes
    return patch


def _affinity_patch(template: Mapping[str, Any], affinity: Any) -> dict[str, Any] | None:
    """The merge patch that makes the template's affinity `affinity` (lists are replaced whole)."""
    have = (template.get("spec") or {}).get("affinity")
    if have == affinity:
        return None
    return {"spec": {"affinity": _replace(have, affinity)}}


def _replace(have: Any, want: Any) -> Any:
    """A merge patch from `have` to `want`: keys gone are nulled, maps merged, anything else replaced."""
    if not isinstance(have, dict) or not isinstance(want, dict):
        return want
    patch = {key: None for key in have if key not in want}
    for key, value in want.items():
        if have.get(key) != value:
            patch[key] = _replace(have.get(key), value)
    return patch


@dataclass(frozen=True)
class Sync:
    """What to write to one ReplicaSet that exists."""

    replicaset: dict[str, Any] | None = None  # a merge patch of the ReplicaSet; None: nothing
    pods: bool = False  # list its pods and move their metadata (then record `wanted`)
    had: Injected | None = None
    wanted: Injected | None = None

    @property
    def record(self) -> dict[str, Any]:
        """The merge patch that records `wanted` as injected."""
        return {"metadata": {"annotations": {EPHEMERAL_ANNOTATION: encoded(self.wanted)}}}


def sync(
    replicaset: Object,
    wanted: Injected | None,
    *,
    anti_affinity: AntiAffinity | None = None,
    stable: str | None = None,
    current: bool = False,
) -> Sync:
    """The next writes to `replicaset` (an existing one) for its metadata and, for the `current`
    revision's, its injected anti-affinity: away from `stable`'s pods while a release runs, gone once
    it is the stable one (Argo: `GenerateReplicaSetAffinity`), named anew if the stable changed."""
    had = recorded(replicaset)
    template = replicaset["spec"]["template"]
    template_patch: dict[str, Any] = {}
    metadata_patch = moved(template.get("metadata") or {}, had, wanted)
    if metadata_patch:
        template_patch["metadata"] = metadata_patch
    if current and anti_affinity is not None:
        affinity = _affinity_patch(
            template,
            resynced(
                template,
                anti_affinity,
                stable=stable,
                revision=replicaset["metadata"]["labels"][HASH_LABEL],
                namespace=replicaset["metadata"]["namespace"],
            ),
        )
        if affinity is not None:
            template_patch["spec"] = affinity["spec"]
    status = replicaset.get("status") or {}
    empty = replicaset["spec"].get("replicas", 0) == 0 and status.get("replicas", 0) == 0
    settled = had == wanted
    if template_patch:
        patch: dict[str, Any] = {"spec": {"template": template_patch}}
        if empty and not settled:
            patch["metadata"] = Sync(wanted=wanted).record["metadata"]
        return Sync(replicaset=patch, had=had, wanted=wanted)
    if settled:
        return Sync(had=had, wanted=wanted)
    if empty:
        return Sync(replicaset=Sync(wanted=wanted).record, had=had, wanted=wanted)
    metadata = replicaset["metadata"]
    if status.get("observedGeneration", 0) < metadata.get("generation", 1):
        return Sync(had=had, wanted=wanted)  # a pod of the old template may still be on its way
    return Sync(pods=True, had=had, wanted=wanted)
