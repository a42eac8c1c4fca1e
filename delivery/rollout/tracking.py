"""The reads and writes of configuration releases (`delivery.rollout.config` decides).

What is cached: the ConfigMaps and Secrets labelled `delivery.luojilab.com/track: "true"` and the
copies (labelled `delivery.luojilab.com/copy-of`), each selected by label on the watch itself, so
the controller holds only what it tracks and never a Secret nobody labelled (and, of the copies,
only its shard's: each copy carries its Rollout's shard label). Which kinds are
tracked is the controller's `--track-configmaps` / `--track-secrets` (the chart's
`configTracking`), because reading them needs a grant a platform team gives on purpose.

The writes of one revision, in this order, each idempotent:
1. the copies, owned by the Rollout (`prepare`), before its ReplicaSet exists: pods never start
   with a reference to a copy that is not there. A copy found already made (a reconcile killed
   after making it) is re-used; one killed before the ReplicaSet was made is re-used when the same
   revision is made, or collected with its Rollout if that revision never is;
2. the ReplicaSet (`delivery.rollout.act.scale`), whose template refers to the copies;
3. each copy handed to its ReplicaSet (`adopt`: the owner reference replaced), level-based, every
   reconcile, for every ReplicaSet of the Rollout: a kill between 2 and 3 is repaired the next time.
   From then on the garbage collector removes the copies with their ReplicaSet (the history limit,
   the Rollout's deletion); the controller never deletes a ConfigMap or Secret itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from delivery.kube import shard
from delivery.kube.api import Kind, Kube, KubeError, Object
from delivery.kube.informer import Handler, Watch, trimmed
from delivery.kube.kinds import CONFIG_MAP, SECRET
from delivery.report import Condition
from delivery.rollout import config
from delivery.rollout.config import COPY_LABEL, TRACK_LABEL, Problem, Ref, Release
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL

log = logging.getLogger(__name__)

READY = "ConfigurationReady"
KINDS: dict[str, Kind] = {config.CONFIG_MAP: CONFIG_MAP, config.SECRET: SECRET}
Located = tuple[str, str, str]  # kind, namespace, name


def _located(body: Object) -> Located:
    metadata = body["metadata"]
    return body["kind"], metadata["namespace"], metadata["name"]


def reference_to(owner: Object) -> dict[str, Any]:
    """An owner reference that only ties a copy's life to its owner (no controller, no blocking)."""
    metadata = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
    }


class Tracker:
    """The tracked objects and the copies of the kinds in `kinds` (ConfigMap, Secret), as watched."""

    def __init__(self, kinds: Iterable[str] = (), controller_id: str | None = None) -> None:
        self.kinds = frozenset(kinds)
        self.controller_id = controller_id  # the shard: its Rollouts' copies are the ones watched
        self.sources: dict[Located, Object] = {}
        # namespace, Rollout, revision -> the copies of that revision, by (kind, name)
        self.copies: dict[tuple[str, str, str], dict[tuple[str, str], Object]] = {}

    def watches(
        self, on_source: Callable[[str, str, str], None], on_copy: Callable[[str, str], None]
    ) -> list[tuple[Watch, Handler]]:
        """The label-selected watches; `on_source(namespace, kind, name)` and `on_copy(namespace,
        rollout)` are told after each event, to queue the Rollouts concerned."""

        def source(event_type: str, body: Object) -> None:
            located = _located(body)
            if event_type == "DELETED":
                self.sources.pop(located, None)
            else:
                self.sources[located] = body
            on_source(located[1], located[0], located[2])

        def copy(event_type: str, body: Object) -> None:
            rollout = self.observe_copy(event_type, body)
            if rollout is not None:
                on_copy(body["metadata"]["namespace"], rollout)

        # The tracked objects are anyone's, used by Rollouts of any shard: every shard watches them.
        # The copies are children: each shard watches its own Rollouts' copies.
        copies = shard.of_children(COPY_LABEL, self.controller_id)
        return [
            watch
            for name in sorted(self.kinds)
            for watch in (
                (Watch(KINDS[name], label_selector=f"{TRACK_LABEL}=true"), source),
                (Watch(KINDS[name], label_selector=copies), copy),
            )
        ]

    def observe_copy(self, event_type: str, body: Object) -> str | None:
        """Record one event of a copy (from the watch, or a relabelling's write); the Rollout it
        belongs to, None when it is not one of ours."""
        kind, namespace, name = _located(body)
        labels = body["metadata"].get("labels") or {}
        rollout: str | None = labels.get(ROLLOUT_LABEL)
        revision: str | None = labels.get(HASH_LABEL)
        if not rollout or not revision:
            return None  # not one of ours: a copy names its Rollout and revision
        key = (namespace, rollout, revision)
        if event_type == "DELETED":
            self.copies.get(key, {}).pop((kind, name), None)
            if not self.copies.get(key):
                self.copies.pop(key, None)
        else:
            self.copies.setdefault(key, {})[(kind, name)] = body
        return rollout

    async def resolve(
        self,
        kube: Kube,
        rollout: Object,
        template: dict[str, Any],
        current: Iterable[Object],
        bare: str | None = None,
    ) -> Release | Problem:
        """The revision of `template` with its tracked configuration, or why it cannot be known.
        `current` are the ReplicaSets of the revisions in use (the latest and the stable): an
        object they were released with that the cache lacks is read from the apiserver, and
        missing or unreadable it is a `Problem`, never taken as "not tracked any more". A
        Rollout's first revision reads what the cache lacks too (a ConfigMap applied with its
        Rollout may reach the controller after it), missing then being merely untracked. `bare`:
        the template's own hash, if the caller has it (`config.release`)."""
        namespace, name = rollout["metadata"]["namespace"], rollout["metadata"]["name"]
        if not self.kinds:  # nothing tracked: the template alone, without looking for references
            return config.release(template, {}, name, bare)
        current = list(current)
        released_with: set[Ref] = set()
        for replicaset in current:
            released_with |= set(
                config.copies_in(replicaset["spec"]["template"], replicaset["metadata"]["labels"][HASH_LABEL])
            )
        sources: dict[Ref, Object] = {}
        for kind, ref_name in config.references(template):
            if kind not in self.kinds:
                continue
            source = self.sources.get((kind, namespace, ref_name))
            if source is None and (not current or (kind, ref_name) in released_with):
                required = (kind, ref_name) in released_with
                source_or_problem = await self._confirm(kube, namespace, kind, ref_name, required)
                if isinstance(source_or_problem, Problem):
                    return source_or_problem
                source = source_or_problem
            if source is not None:
                problem = config.refused(source)
                if problem is not None:
                    return problem
                sources[(kind, ref_name)] = source
        return config.release(template, sources, name, bare)

    async def _confirm(
        self, kube: Kube, namespace: str, kind: str, name: str, required: bool
    ) -> Object | Problem | None:
        """An object the cache lacks, read once: unreadable, missing (a `Problem` if `required`:
        the running revision uses it), or not tracked (its label removed: from now on it is used
        as it is, which is a change like any other). Not `required`, it is asked for by name and
        label together, so an object nobody labelled is never read."""
        try:
            if required:
                body = await kube.get(KINDS[kind], namespace, name)
            else:
                query = {"labelSelector": f"{TRACK_LABEL}=true", "fieldSelector": f"metadata.name={name}"}
                items = (await kube.request("GET", KINDS[kind].path(namespace), query=query)).get("items")
                body = {"apiVersion": "v1", "kind": kind, **items[0]} if items else None
        except KubeError as error:
            return Problem(
                f"{kind}Unreadable",
                f"{kind} {name} could not be read ({error.status} {error.reason or error.message}):"
                " its data is unknown, so nothing is released until it can be read",
            )
        if body is None and not required:
            return None
        if body is None:
            return Problem(
                f"{kind}Missing",
                f"{kind} {name} is used by the pod template and by the running revision, and does not"
                " exist: nothing is released until it is back (or the template no longer uses it)",
            )
        labels = body["metadata"].get("labels") or {}
        return body if labels.get(TRACK_LABEL) == "true" else None

    async def prepare(self, kube: Kube, rollout: Object, release: Release) -> Problem | None:
        """Make the copies of `release` that do not exist yet, owned by the Rollout until its
        ReplicaSet is made; a name already taken by something else is a `Problem`."""
        namespace, name = rollout["metadata"]["namespace"], rollout["metadata"]["name"]
        made = self.copies.get((namespace, name, release.revision), {})
        for (kind, _source), body in release.copies.items():
            copy_name = body["metadata"]["name"]
            if (kind, copy_name) in made:
                continue
            metadata = {
                **body["metadata"],
                "labels": shard.labelled(body["metadata"]["labels"], shard.of(rollout)),
                "ownerReferences": [reference_to(rollout)],
            }
            owned = {**body, "metadata": metadata}
            try:
                await kube.create(KINDS[kind], namespace, owned)
                log.info("%s/%s: made %s %s", namespace, name, kind, copy_name)
            except KubeError as error:
                if not error.conflict:
                    raise
                existing = await kube.get(KINDS[kind], namespace, copy_name)
                if existing is not None and not config.same_copy(existing, body):
                    return Problem(
                        "CopyNameTaken",
                        f"{kind} {copy_name} exists and is not the copy of"
                        f" {body['metadata']['labels'][COPY_LABEL]} for revision {release.revision}:"
                        " rename or remove it",
                    )
        return None

    async def adopt(self, kube: Kube, rollout: Object, replicasets: Iterable[Object]) -> None:
        """Hand each revision's copies to its ReplicaSet, where they are not its already."""
        namespace, name = rollout["metadata"]["namespace"], rollout["metadata"]["name"]
        for replicaset in replicasets:
            revision = replicaset["metadata"]["labels"][HASH_LABEL]
            owner = reference_to(replicaset)
            for (kind, copy_name), body in list(self.copies.get((namespace, name, revision), {}).items()):
                if config.owned_by(body, owner):
                    continue
                try:
                    written = await kube.patch_guarded(
                        KINDS[kind],
                        namespace,
                        copy_name,
                        body["metadata"]["resourceVersion"],
                        {"metadata": {"ownerReferences": [owner]}},
                    )
                except KubeError as error:
                    if not (error.conflict or error.not_found):
                        raise
                    # changed or gone since observed: its own event brings the next reconcile
                    continue
                # Seen as handed over at once: a reconcile before the patch's own watch event
                # would otherwise try it again (refused as stale, but a write all the same).
                self.observe_copy("MODIFIED", trimmed(written))

    def uses(self, rollouts: Iterable[Object], namespace: str, kind: str, name: str) -> list[Object]:
        """The Rollouts of `namespace` that may use `kind`/`name`: those whose template names it,
        and those whose template is a Deployment's (workloadRef), which the cache does not hold."""
        return [
            rollout
            for rollout in rollouts
            if rollout["metadata"]["namespace"] == namespace
            and (
                "workloadRef" in (rollout.get("spec") or {})
                or (kind, name) in config.references((rollout.get("spec") or {}).get("template") or {})
            )
        ]


def condition(result: Release | Problem, had_condition: bool) -> Condition | None:
    """The `ConfigurationReady` condition: False with the problem; True when the Rollout tracks
    something (or said before that it did); none for a Rollout that never tracked anything."""
    if isinstance(result, Problem):
        return Condition(READY, False, result.reason, result.message)
    if result.copies:
        return Condition(READY, True, "Tracked", config.condition_message(result.tracked, result.revision))
    if had_condition:
        return Condition(READY, True, "NothingTracked", "the template uses no tracked ConfigMap or Secret")
    return None
