"""The latest objects seen on the watches: what a reconcile reads instead of asking the apiserver.

Standby replicas keep this cache warm too, so a replica that becomes leader can act at once.
Objects are grouped by owner (a ReplicaSet by its Rollout, say) so a reconcile reads its
children without listing. The informers (`delivery.kube.informer`) feed it, deletions that
happened while nobody watched included.
"""

from __future__ import annotations

from collections import defaultdict

from delivery.kube.api import Object
from delivery.kube.informer import Key as ObjectKey
from delivery.kube.informer import key_of

__all__ = ["Cache", "ObjectKey", "key_of"]


def _version(body: Object) -> int:
    # resourceVersion is opaque by contract but is etcd's revision in practice; comparing it keeps
    # a body we wrote ourselves from being replaced by an older event still in flight.
    return int(body["metadata"].get("resourceVersion") or 0)


class Cache:
    def __init__(self) -> None:
        self._objects: dict[ObjectKey, Object] = {}
        self._children: defaultdict[ObjectKey, dict[str, Object]] = defaultdict(dict)

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, key: ObjectKey) -> Object | None:
        return self._objects.get(key)

    def observe(self, event_type: str | None, body: Object) -> ObjectKey:
        """Record one watch event of a top-level object."""
        key = key_of(body)
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
