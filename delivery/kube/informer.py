"""List, then watch from the listing's version, as client-go's Reflector does, for asyncio.

Why our own and not kopf's watches: a cache fed by watch events alone drops an object only on a
DELETED event, so an object deleted while the watch was down (an apiserver restart, a dropped
connection, a `410 Gone` after etcd compacted the version the watch resumed from) stays in the
cache for ever: a Component whose Service went in the gap is never repaired, a Rollout waits on a
ReplicaSet that is not there. kopf relists after a gap but does not tell its handlers where a
listing begins or ends, so nobody can diff it. Here every (re)list is compared with what this
informer last knew, and what the listing lacks is delivered as DELETED.

Recovery is fast by construction: after a failure the next attempt comes after a short back-off
capped at `BACKOFF_MAX` seconds, so a controller whose apiserver comes back is watching again,
and every object is delivered again (so every reconcile is redone), within a couple of seconds.

Bodies are delivered without `metadata.managedFields`: nothing in the controller reads them and
they are often the largest part of an object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from delivery.kube.api import Kind, Kube, KubeError, Object
from delivery.kube.transient import transient

log = logging.getLogger(__name__)

BACKOFF_START = 0.2  # seconds before the first retry after a failed list or watch
BACKOFF_MAX = 2.0  # the cap: a controller is watching again within this of the apiserver answering
PAGE = 500  # objects per listing page: a large listing never sits whole in one response
GONE = 410

Key = tuple[str, str]  # namespace ("" for cluster-scoped), name
Handler = Callable[[str, Object], None]  # event type (ADDED, MODIFIED, DELETED), body


@dataclass(frozen=True)
class Watch:
    """One kind of object to cache, selected server-side."""

    kind: Kind
    label_selector: str = ""
    field_selector: str = ""
    # One namespace whatever the controller watches (None: the controller's namespaces): an object
    # that lives in a known place is read there, under a Role, not across the cluster.
    namespace: str | None = None

    def query(self) -> dict[str, str]:
        pairs = {"labelSelector": self.label_selector, "fieldSelector": self.field_selector}
        return {key: value for key, value in pairs.items() if value}


def key_of(body: Object) -> Key:
    metadata = body["metadata"]
    return metadata.get("namespace", ""), metadata["name"]


def trimmed(body: Object) -> Object:
    """The body as cached: without the field managers' records."""
    metadata = body.get("metadata") or {}
    if "managedFields" in metadata:
        body = {**body, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    return body


def relist_events(known: dict[Key, Object], listed: Iterable[Object]) -> list[tuple[str, Object]]:
    """What a listing means against what was known before it: each listed object ADDED or MODIFIED,
    and each known object that the listing lacks DELETED (it went while nobody watched)."""
    seen: set[Key] = set()
    events: list[tuple[str, Object]] = []
    for body in listed:
        key = key_of(body)
        seen.add(key)
        events.append(("MODIFIED" if key in known else "ADDED", body))
    events += [("DELETED", body) for key, body in known.items() if key not in seen]
    return events


class Informer:
    """Keeps `handler` told of every object of one `Watch` in one namespace (None: all of them)."""

    def __init__(
        self,
        kube: Kube,
        watch: Watch,
        namespace: str | None,
        handler: Handler,
        *,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.kube = kube
        self.on_failure = on_failure  # told of each failed list or watch (the discovery may be old)
        self.watch = watch
        self.namespace = namespace if watch.kind.namespaced else None
        self.handler = handler
        self.synced = asyncio.Event()  # set once the first listing was delivered
        self.listings = 0  # how many listings were delivered (1 + the relists)
        self._known: dict[Key, Object] = {}

    @property
    def size(self) -> int:
        """The objects this informer holds now."""
        return len(self._known)

    @property
    def name(self) -> str:
        where = self.namespace or "all namespaces"
        return f"{self.watch.kind.plural} in {where}"

    async def run(self) -> None:
        """List and watch until cancelled; every failure is retried on a short, capped back-off."""
        delay = BACKOFF_START
        while True:
            try:
                version = await self._list()
                delay = BACKOFF_START
                await self._watch(version)
            except KubeError as error:
                if error.status != GONE and self.on_failure is not None:
                    self.on_failure(error)
                if error.status == GONE:
                    log.info("%s: the watched version is gone (410); listing again", self.name)
                    continue
                if not transient(error):
                    log.error("%s: %s; listing again in %.1fs", self.name, error, BACKOFF_MAX)
                    await asyncio.sleep(BACKOFF_MAX)
                    continue
                log.warning("%s: %s; listing again in %.1fs", self.name, error, delay)
            except Exception as error:  # a watch must never die: every failure is retried
                if self.on_failure is not None:
                    self.on_failure(error)
                if not transient(error):
                    log.exception("%s: unexpected failure; listing again in %.1fs", self.name, delay)
                else:
                    log.warning("%s: %r; listing again in %.1fs", self.name, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _list(self) -> str:
        """One consistent listing (paged), delivered as the difference from what was known."""
        kind = self.watch.kind
        items: list[Object] = []
        query = {**self.watch.query(), "limit": str(PAGE)}
        version = ""
        while True:
            page = await self.kube.request("GET", kind.path(self.namespace), query=query)
            # A list's items do not say their kind (the list does); watch events' objects do.
            items += (
                trimmed({"apiVersion": kind.api_version, "kind": kind.kind, **item})
                for item in page.get("items") or []
            )
            metadata = page.get("metadata") or {}
            version = version or metadata.get("resourceVersion", "")
            token = metadata.get("continue")
            if not token:
                break
            query = {**query, "continue": token}
        for event_type, body in relist_events(self._known, items):
            self._deliver(event_type, body)
        self.listings += 1
        self.synced.set()
        return version

    async def _watch(self, version: str) -> None:
        """Watch from `version` until the watch fails; a watch the apiserver ends on time resumes."""
        while True:
            events = self.kube.watch(
                self.watch.kind,
                self.namespace,
                label_selector=self.watch.label_selector,
                field_selector=self.watch.field_selector,
                resource_version=version,
                bookmarks=True,
            )
            async for event_type, body in events:
                version = (body.get("metadata") or {}).get("resourceVersion") or version
                if event_type != "BOOKMARK":
                    self._deliver(event_type, trimmed(body))

    def _deliver(self, event_type: str, body: Object) -> None:
        key = key_of(body)
        if event_type == "DELETED":
            self._known.pop(key, None)
        else:
            self._known[key] = body
        self.handler(event_type, body)
