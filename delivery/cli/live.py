"""The plugin's live view: list, then watch a Rollout and its ReplicaSets; no polling.

Each change of either yields a fresh snapshot. A watch the apiserver ends (it does after a
few minutes, or with 410 when our resourceVersion is too old) is followed by a new list and
watch, so the view never misses a change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from delivery.kube.api import Kind, Kube, KubeError, Object
from delivery.kube.informer import GONE
from delivery.kube.kinds import REPLICA_SET, ROLLOUT
from delivery.rollout.revision import ROLLOUT_LABEL


@dataclass
class Snapshot:
    rollout: Object | None
    replicasets: list[Object]


@dataclass
class Mirror:
    """The objects of one kind that a selector matches, by name, as the apiserver last said."""

    kind: Kind
    namespace: str
    label_selector: str = ""
    field_selector: str = ""
    objects: dict[str, Object] = field(default_factory=dict)
    listed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, kube: Kube, changed: asyncio.Event) -> None:
        query = {"labelSelector": self.label_selector, "fieldSelector": self.field_selector}
        while True:
            listed = await kube.request(
                "GET", self.kind.path(self.namespace), query={k: v for k, v in query.items() if v}
            )
            self.objects = {item["metadata"]["name"]: item for item in listed["items"]}
            self.listed.set()
            changed.set()
            events = kube.watch(
                self.kind,
                self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                resource_version=listed["metadata"]["resourceVersion"],
            )
            try:
                async for type_, item in events:
                    if type_ == "DELETED":
                        self.objects.pop(item["metadata"]["name"], None)
                    else:
                        self.objects[item["metadata"]["name"]] = item
                    changed.set()
            except KubeError as error:
                if error.status != GONE:
                    raise


async def follow(kube: Kube, namespace: str, name: str) -> AsyncIterator[Snapshot]:
    """A snapshot once both kinds are listed, then one after each change."""
    rollouts = Mirror(ROLLOUT, namespace, field_selector=f"metadata.name={name}")
    replicasets = Mirror(REPLICA_SET, namespace, label_selector=f"{ROLLOUT_LABEL}={name}")
    changed = asyncio.Event()
    mirrors = [asyncio.create_task(mirror.run(kube, changed)) for mirror in (rollouts, replicasets)]
    try:
        while True:
            waiter = asyncio.create_task(changed.wait())
            done, _pending = await asyncio.wait([waiter, *mirrors], return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                for task in done:
                    task.result()  # a mirror ends only by an error: raise it
            changed.clear()
            if rollouts.listed.is_set() and replicasets.listed.is_set():
                yield Snapshot(rollouts.objects.get(name), list(replicasets.objects.values()))
    finally:
        for task in mirrors:
            task.cancel()
        for task in mirrors:
            with contextlib.suppress(asyncio.CancelledError):
                await task
