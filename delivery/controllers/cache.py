"""The latest objects seen on the watches: what a reconcile reads instead of asking the apiserver.

Standby replicas keep this cache warm too, so a replica that becomes leader can act at once.
Objects are grouped by owner (a ReplicaSet by its Rollout, say) so a reconcile reads its
children without listing.

Until it is synced, the cache also notes the newest version it saw of each object, deletions
included, so a listing can tell when the watches have caught up with it (client-go's
WaitForCacheSync); after that it stops, so the notes never grow with churn.
"""

from __future__ import annotations

from collections import defaultdict

from delivery.kube.api import Object

ObjectKey = tuple[str, str]  # namespace, name
Listed = dict[tuple[ObjectKey, str], int]  # (object or owner, child name or "") -> resourceVersion


def _version(body: Object) -> int:
    # resourceVersion is opaque by contract but is etcd's revision in practice; comparing it keeps
    # a body we wrote ourselves from being replaced by an older event still in flight.
    return int(body["metadata"].get("resourceVersion") or 0)


def key_of(body: Object) -> ObjectKey:
    metadata = body["metadata"]
    return metadata.get("namespace", ""), metadata["name"]


class Cache:
    def __init__(self) -> None:
        self._objects: dict[ObjectKey, Object] = {}
        self._children: defaultdict[ObjectKey, dict[str, Object]] = defaultdict(dict)
        self._seen: Listed | None = {}  # None once synced

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, key: ObjectKey) -> Object | None:
        return self._objects.get(key)

    def observe(self, event_type: str | None, body: Object) -> ObjectKey:
        """Record one watch event of a top-level object."""
        key = key_of(body)
        self._note((key, ""), body)
        if event_type == "DELETED":
            self._objects.pop(key, None)
        elif key not in self._objects or _version(body) >= _version(self._objects[key]):
            self._objects[key] = body
        return key

    def children(self, owner: ObjectKey) -> dict[str, Object]:
        return self._children.get(owner, {})

    def observe_child(self, event_type: str | None, owner: ObjectKey, body: Object) -> None:
        """Record one watch event of an object owned by `owner`."""
        name = body["metadata"]["name"]
        self._note((owner, name), body)
        if event_type == "DELETED":
            self._children[owner].pop(name, None)
            if not self._children[owner]:
                del self._children[owner]
        else:
            self._children[owner][name] = body

    def keys(self) -> list[ObjectKey]:
        return list(self._objects)

    def values(self) -> list[Object]:
        return list(self._objects.values())

    def _note(self, where: tuple[ObjectKey, str], body: Object) -> None:
        if self._seen is not None:
            self._seen[where] = max(self._seen.get(where, 0), _version(body))

    @property
    def synced(self) -> bool:
        return self._seen is None

    def sync_with(self, listed: Listed) -> bool:
        """True (and synced from now on) once every listed object was seen at its listed version."""
        if self._seen is None:
            return True
        if all(self._seen.get(where, 0) >= version for where, version in listed.items()):
            self._seen = None
        return self._seen is None
