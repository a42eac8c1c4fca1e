"""Batch re-render: a change of the ClusterProfile or of a template reaches every Component, a few at
a time, and stops at the first one that does not become ready.

A platform engineer's change touches every service of the cluster at once, so it is released
like a canary of services: at most `limit` Components are re-rendered and not yet ready at any
moment; the next ones start as those become ready; one that fails (its render is refused, or it
is not ready within `deadline`) halts the batch, which says so on the ClusterProfile, until it
becomes ready or the inputs change again (a fix starts a new batch).

The decision (`pace`) is pure and reads only what the Components' statuses say: the revision
of the inputs each was last rendered from, and whether it is ready. Nothing is kept between
reconciles except `granted`, the Components allowed to start whose status does not say so yet;
a controller restarted mid-batch forgets them and grants again, never more than `limit`.

A new Component, or one whose spec changed, is rendered at once: the batch paces only changes
that the Component's owner did not make.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from delivery.component.status import READY, RECONCILED
from delivery.kube.api import Object
from delivery.kube.informer import Key as ObjectKey
from delivery.kube.informer import key_of
from delivery.report import Condition

RERENDERED = "Rerendered"
"""The ClusterProfile's condition: every Component rendered from the current inputs and ready."""


@dataclass(frozen=True)
class Member:
    """One Component, as the batch sees it."""

    key: ObjectKey
    revision: str | None
    """The revision of the inputs its objects were last rendered from (None: never rendered)."""
    rendered_at: datetime.datetime | None
    ready: bool
    """Ready for its current generation and rendered revision."""
    error: str | None = None
    """Why its last render was refused, if it was."""
    error_since: datetime.datetime | None = None
    deleting: bool = False
    """Being deleted (its finalizer still on): not paced."""


@dataclass(frozen=True)
class Pacing:
    """What the batch decided, and what the ClusterProfile's status says about it."""

    target: str
    total: int
    admitted: frozenset[ObjectKey]
    """May be rendered from `target` now."""
    in_flight: tuple[ObjectKey, ...]
    """Rendered from `target` (or allowed to start) and not ready yet."""
    done: int
    """Rendered from `target` and ready."""
    failed: tuple[tuple[ObjectKey, str], ...] = ()
    """Those that halt the batch, with why."""

    @property
    def halted(self) -> bool:
        return bool(self.failed)

    @property
    def complete(self) -> bool:
        return self.done == self.total


def pace(
    members: Sequence[Member],
    target: str,
    *,
    limit: int,
    deadline: datetime.timedelta,
    now: datetime.datetime,
    granted: Mapping[ObjectKey, datetime.datetime] | None = None,
) -> Pacing:
    """Which Components may be re-rendered from `target` now. The reasons given for a halt name the
    deadline, not the time elapsed, so that the report stays the same while the batch stays halted.

    `granted`: admitted earlier (at the time given) and not seen rendered from `target` yet; they
    count as in flight. One whose render is refused after its grant, or that is not ready within
    `deadline` of its grant or re-render, halts the batch. Components are taken in name order,
    so a batch resumed after a restart continues where it was.
    """
    granted = dict(granted or {})
    current = [m for m in members if m.revision == target]
    in_flight = [m for m in current if not m.ready]
    waiting = sorted((m for m in members if m.revision != target), key=lambda m: m.key)
    started = [m for m in waiting if m.key in granted]
    failed = [
        (m.key, f"not ready within {_seconds(deadline)} of its re-render")
        for m in in_flight
        if m.rendered_at is not None and now - m.rendered_at > deadline
    ]
    for m in started:
        since = granted[m.key]
        if m.error and m.error_since is not None and m.error_since >= since:
            failed.append((m.key, f"render refused: {m.error}"))
        elif now - since > deadline:
            failed.append(
                (m.key, f"not rendered within {_seconds(deadline)} of its turn: {m.error or 'no answer'}")
            )
    busy = [m.key for m in in_flight] + [m.key for m in started]
    admitted = {m.key for m in started}
    if not failed:
        fresh = [m.key for m in waiting if m.key not in granted][: max(limit - len(busy), 0)]
        admitted |= set(fresh)
        busy += fresh
    return Pacing(
        target=target,
        total=len(members),
        admitted=frozenset() if failed else frozenset(admitted),
        in_flight=tuple(sorted(busy)),
        done=len(current) - len(in_flight),
        failed=tuple(sorted(failed)),
    )


def _seconds(delta: datetime.timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def _time(text: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text) if text else None


def awaits_turn(component: Object, revision: str) -> bool:
    """Whether `component` is re-rendered from `revision` only when the batch admits it: it was
    rendered from other inputs and its spec is unchanged since (a change of its owner's, or a first
    render, goes at once, with the current inputs)."""
    status = component.get("status") or {}
    if status.get("renderedRevision") in (None, revision):
        return False
    return bool(status.get("observedGeneration") == component["metadata"].get("generation"))


def member_of(component: Object) -> Member:
    """What the batch reads of a Component: its status, for its current generation."""
    status = component.get("status") or {}
    generation = component["metadata"].get("generation")
    conditions = {
        c["type"]: c for c in status.get("conditions", []) if c.get("observedGeneration") == generation
    }
    reconciled = conditions.get(RECONCILED, {})
    refused = reconciled.get("status") == "False"
    return Member(
        key=key_of(component),
        revision=status.get("renderedRevision"),
        rendered_at=_time(status.get("renderedAt")),
        ready=conditions.get(READY, {}).get("status") == "True",
        error=(reconciled.get("message") or reconciled.get("reason")) if refused else None,
        error_since=_time(reconciled.get("lastTransitionTime")) if refused else None,
        deleting=bool(component["metadata"].get("deletionTimestamp")),
    )


@dataclass
class Batch:
    """The controller's side of `pace`: the grants it made, and the last decision for the report."""

    limit: int
    deadline: datetime.timedelta
    granted: dict[ObjectKey, datetime.datetime] = field(default_factory=dict)
    last: Pacing | None = None

    def settled(self, target: str) -> bool:
        """Nothing left to pace towards `target`: no batch has started, or the last decision was for
        `target` and complete. While it is not, every render looks at the batch again, since nothing
        else wakes it when the last ones in flight never become ready."""
        return self.last is None or (self.last.target == target and self.last.complete)

    def decide(self, components: Iterable[Object], target: str, now: datetime.datetime) -> Pacing:
        """Which of `components` (all those the inputs apply to) may be rendered from `target` now.
        The caller renders the admitted ones (queues them) and holds back the others."""
        # Never-rendered Components are rendered at once (or fail on their own), not re-rendered;
        # one being deleted is going away, not re-rendered, and must not hold the batch back.
        members = [m for m in map(member_of, components) if m.revision is not None and not m.deleting]
        if self.last is not None and self.last.target != target:
            self.granted.clear()  # a new batch: the old grants were for other inputs
        waiting = {m.key for m in members if m.revision != target}
        self.granted = {key: at for key, at in self.granted.items() if key in waiting}
        decision = pace(
            members, target, limit=self.limit, deadline=self.deadline, now=now, granted=self.granted
        )
        for key in decision.admitted:
            self.granted.setdefault(key, now)
        self.last = decision
        return decision


def profile_condition(pacing: Pacing, limit: int) -> Condition:
    """How the batch stands, as the ClusterProfile's `Rerendered` condition."""
    progress = f"{pacing.done} of {pacing.total} Components rendered from inputs {pacing.target} and ready"
    if pacing.complete:
        return Condition(RERENDERED, True, "Complete", progress)
    if pacing.halted:
        (namespace, name), why = pacing.failed[0]
        return Condition(RERENDERED, False, "Halted", f"halted at {namespace}/{name}: {why}; {progress}")
    flying = ", ".join(f"{namespace}/{name}" for namespace, name in pacing.in_flight)
    return Condition(RERENDERED, False, "InProgress", f"{progress}; in flight (at most {limit}): {flying}")
