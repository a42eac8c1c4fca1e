"""One informer per kind for the whole server, their objects kept as views, changes told to pages.

However many tabs are open, the server holds one watch of each kind (Rollouts, Components,
ReplicaSets of Rollouts, Rollout Events, analysis templates), never one per tab or per object:
what a watch delivers is turned into its view (`delivery.dashboard.views`) and the object itself
dropped. Each open page is a `Subscriber`: a set of what changed since it was last sent, and an
event that wakes its stream. A burst of changes is coalesced into one message per page, and a slow
browser costs at most that set (every key once), never a queue that grows.

The weight over time is the one thing the objects do not say: the store records each change of a
Rollout's canary weight it sees (since the server started), a bounded series per Rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from delivery.dashboard import views
from delivery.dashboard.views import Key, View
from delivery.kube.api import Kind, Kube, Object
from delivery.kube.informer import Handler, Informer, Watch
from delivery.kube.kinds import (
    ANALYSIS_TEMPLATE,
    CLUSTER_ANALYSIS_TEMPLATE,
    COMPONENT,
    REPLICA_SET,
    ROLLOUT,
)
from delivery.rollout.revision import ROLLOUT_LABEL

log = logging.getLogger(__name__)

EVENT = Kind("v1", "Event", "events")
ROLLOUT_EVENTS = "involvedObject.kind=Rollout"
SYNC_SECONDS = 10.0  # the longest a first page waits for a kind to be listed (one it may not list)

ROLLOUTS = "rollouts"
COMPONENTS = "components"


@dataclass(eq=False)
class Subscriber:
    """One open page: the list (`rollout` None) or one Rollout's page."""

    rollout: Key | None
    dirty: set[tuple[str, Key]] = field(default_factory=set)  # (ROLLOUTS or COMPONENTS, key)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def mark(self, what: str, key: Key) -> None:
        self.dirty.add((what, key))
        self.wake.set()

    def take(self) -> set[tuple[str, Key]]:
        taken, self.dirty = self.dirty, set()
        self.wake.clear()
        return taken


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """The views of every watched object in `namespaces` (none: the cluster's), kept up to date:
    one informer per kind and namespace (the controller may watch only some namespaces, under
    Roles), one per kind for the whole cluster."""

    def __init__(self, kube: Kube, namespaces: Sequence[str] = (), clock: Callable[[], str] = _now) -> None:
        self.kube = kube
        self.clock = clock
        self.rollouts: dict[Key, View] = {}
        self.components: dict[Key, View] = {}
        self.replicasets: dict[Key, dict[str, View]] = {}  # by Rollout, then by name
        self.events: dict[Key, dict[str, View]] = {}  # by Rollout, then by name
        self.templates: dict[Key, dict[str, View]] = {}
        self.cluster_templates: dict[str, dict[str, View]] = {}
        self.weights: dict[Key, deque[tuple[str, int]]] = {}
        self.subscribers: set[Subscriber] = set()
        self._component_of: dict[Key, Key] = {}  # a Rollout's key -> the Component that renders it
        watches: list[tuple[Watch, Handler]] = [
            (Watch(ROLLOUT), self._rollout),
            (Watch(COMPONENT), self._component),
            (Watch(REPLICA_SET, label_selector=ROLLOUT_LABEL), self._replicaset),
            (Watch(EVENT, field_selector=ROLLOUT_EVENTS), self._event),
            (Watch(ANALYSIS_TEMPLATE), self._template),
        ]
        where: list[str | None] = list(namespaces) or [None]
        self.informers = [
            Informer(kube, watch, namespace, handler) for watch, handler in watches for namespace in where
        ]
        self.informers.append(Informer(kube, Watch(CLUSTER_ANALYSIS_TEMPLATE), None, self._cluster_template))
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(informer.run()) for informer in self.informers]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def synced(self) -> None:
        """Every kind listed once, or SYNC_SECONDS passed (a kind the user may not list, such as
        ClusterAnalysisTemplates under a namespaced Role, is then shown without)."""
        waits = [informer.synced.wait() for informer in self.informers]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), SYNC_SECONDS)

    # --- subscribers -------------------------------------------------------------------------------

    def subscribe(self, rollout: Key | None) -> Subscriber:
        subscriber = Subscriber(rollout)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def _changed(self, what: str, key: Key, *, rollout: Key | None = None) -> None:
        """Tell the list pages of `key`'s row, and the page of `rollout` (of `key` itself when a
        Rollout changed) that it has something new."""
        page = rollout or (key if what == ROLLOUTS else None)
        for subscriber in self.subscribers:
            if subscriber.rollout is None:
                if rollout is None:
                    subscriber.mark(what, key)
            elif subscriber.rollout == page:
                subscriber.mark(what, key)

    # --- what the pages are sent -----------------------------------------------------------------

    def rollout_rows(self, keys: set[Key] | None = None) -> list[View]:
        chosen = self.rollouts if keys is None else {k: self.rollouts[k] for k in keys if k in self.rollouts}
        return [views.row_of(view) for view in chosen.values()]

    def component_rows(self, keys: set[Key] | None = None) -> list[View]:
        chosen = self.components if keys is None else {k: v for k, v in self.components.items() if k in keys}
        return [
            views.component_row(view, self.rollouts.get((view["namespace"], view["rollout"] or "")))
            for view in chosen.values()
        ]

    def listing(self, changed: set[tuple[str, Key]] | None = None) -> View:
        """The list page's rows: all of them, or those of the keys changed, with the keys gone."""
        if changed is None:
            return {"rollouts": self.rollout_rows(), "components": self.component_rows(), "gone": []}
        rollouts = {key for what, key in changed if what == ROLLOUTS}
        components = {key for what, key in changed if what == COMPONENTS}
        gone = [[what, *key] for what, key in sorted(changed) if key not in self._kept(what)]
        return {
            "rollouts": self.rollout_rows(rollouts),
            "components": self.component_rows(components),
            "gone": gone,
        }

    def _kept(self, what: str) -> dict[Key, View]:
        return self.rollouts if what == ROLLOUTS else self.components

    def page(self, key: Key) -> View | None:
        """A Rollout's page as it stands, or None when there is no such Rollout (any more)."""
        rollout = self.rollouts.get(key)
        if rollout is None:
            return None
        return views.page(
            rollout,
            replicasets=(self.replicasets.get(key) or {}).values(),
            events=(self.events.get(key) or {}).values(),
            weights=self.weights.get(key) or (),
            templates=self.templates,
            cluster_templates=self.cluster_templates,
        )

    # --- the informers' handlers -------------------------------------------------------------------

    def _rollout(self, event_type: str, body: Object) -> None:
        key = _key(body)
        if event_type == "DELETED":
            self.rollouts.pop(key, None)
            self.weights.pop(key, None)
            self.replicasets.pop(key, None)
            self.events.pop(key, None)
        else:
            view = views.rollout_view(body)
            self.rollouts[key] = view
            series = self.weights.setdefault(key, deque(maxlen=views.WEIGHTS_KEPT))
            weight = int(view["weight"] or 0)
            if not series or series[-1][1] != weight:
                series.append((self.clock(), weight))
        self._changed(ROLLOUTS, key)
        component = self._component_of.get(key)
        if component is not None:
            self._changed(COMPONENTS, component)

    def _component(self, event_type: str, body: Object) -> None:
        key = _key(body)
        old = self.components.pop(key, None)
        if old is not None and old["rollout"]:
            self._component_of.pop((key[0], old["rollout"]), None)
        if event_type != "DELETED":
            view = views.component_view(body)
            self.components[key] = view
            if view["rollout"]:
                self._component_of[(key[0], view["rollout"])] = key
        self._changed(COMPONENTS, key)

    def _replicaset(self, event_type: str, body: Object) -> None:
        rollout = (body["metadata"].get("namespace", ""), views.rollout_of(body))
        self._keep(self.replicasets, rollout, event_type, body, views.replicaset_view)

    def _event(self, event_type: str, body: Object) -> None:
        involved = body.get("involvedObject") or {}
        rollout = (body["metadata"].get("namespace", ""), str(involved.get("name", "")))
        self._keep(self.events, rollout, event_type, body, views.event_view)
        kept = self.events.get(rollout) or {}
        if len(kept) > views.EVENTS_KEPT:  # the oldest go: the page shows the newest
            for name, _view in sorted(kept.items(), key=lambda item: str(item[1]["at"]))[
                : len(kept) - views.EVENTS_KEPT
            ]:
                del kept[name]

    def _keep(
        self,
        into: dict[Key, dict[str, View]],
        rollout: Key,
        event_type: str,
        body: Object,
        view: Callable[[Object], View],
    ) -> None:
        name = body["metadata"]["name"]
        if event_type == "DELETED":
            kept = into.get(rollout) or {}
            kept.pop(name, None)
            if not kept:
                into.pop(rollout, None)
        else:
            into.setdefault(rollout, {})[name] = view(body)
        self._changed(ROLLOUTS, rollout, rollout=rollout)

    def _template(self, event_type: str, body: Object) -> None:
        key = _key(body)
        if event_type == "DELETED":
            self.templates.pop(key, None)
        else:
            self.templates[key] = views.template_view(body)
        self._templates_changed()

    def _cluster_template(self, event_type: str, body: Object) -> None:
        name = body["metadata"]["name"]
        if event_type == "DELETED":
            self.cluster_templates.pop(name, None)
        else:
            self.cluster_templates[name] = views.template_view(body)
        self._templates_changed()

    def _templates_changed(self) -> None:
        """A template's thresholds are drawn on every Rollout page that uses it: redraw those open."""
        for subscriber in self.subscribers:
            if subscriber.rollout is not None:
                subscriber.mark(ROLLOUTS, subscriber.rollout)


def _key(body: Object) -> Key:
    metadata = body["metadata"]
    return metadata.get("namespace", ""), metadata["name"]
