"""Release gates and hooks (spec.hooks), as Flagger's webhooks, decided here: pure.

A release is the way from a stable revision to a new one. Its hooks fall in three kinds:

- gates hold it until they say yes (a 2xx answer) or a person opens them (the open-gate
  annotation): `confirm-rollout` before it starts (no pod of the new revision yet),
  `confirm-traffic-increase` before each canary step that raises the weight (the weight stays
  where it is), `confirm-promotion` before the automatic promotion. A gate that says no is
  asked again every `interval`; the release holds meanwhile, the progress deadline does not run.
- checks are asked and their answer acted on: `pre-rollout` once before traffic moves (after the
  confirm-rollout gates; a no aborts the release), `rollout` and `rollback` every `interval`
  while the release runs (after its start, until promotion: a rollout hook's no aborts it, as a
  failed analysis does, and a rollback hook's yes aborts it).
- told, never asked: `post-rollout` once the release completed or rolled back, `event` at every
  transition. Both are sent when the status that records the transition is written (at most
  once, as notifications: delivery.ops.notify).

What the release passed is in the status (`status.gates`, for one revision): the gates opened
and the pre-rollout checks passed, whether it started, and where it is held with the last answer.
A question is asked before it is recorded, so a controller killed in between asks it again (at
least once: a question asked twice is harmless, its answer is what counts); an opened gate is
recorded, so a restart never forgets it. When a hook was last asked is the process's own
memory (no status write per poll): a restarted controller asks at once.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from delivery.api.durations import seconds
from delivery.api.rollout import Hook, HookType, OpenedBy, StrategyName
from delivery.api.rollout import MachineState as State
from delivery.machine import Reason
from delivery.rollout.plan import Plan
from strategies import SetWeight
from strategies.steps import weight_at

GATES = (HookType.CONFIRM_ROLLOUT, HookType.CONFIRM_TRAFFIC_INCREASE, HookType.CONFIRM_PROMOTION)
"""Hold until yes; a person may open them."""
START = (HookType.CONFIRM_ROLLOUT, HookType.PRE_ROLLOUT)
"""Passed before the release starts, in this order."""
RUNNING = (HookType.ROLLOUT, HookType.ROLLBACK)
"""Asked every interval while the release runs."""
RUNS_IN = (State.PROGRESSING, State.PAUSED, State.ANALYSING)
"""The states of a release that has not promoted yet: where it is held, or rolled back by a hook."""

REASONS = {
    HookType.CONFIRM_ROLLOUT: "ConfirmRolloutRefused",
    HookType.CONFIRM_TRAFFIC_INCREASE: "ConfirmTrafficIncreaseRefused",
    HookType.CONFIRM_PROMOTION: "ConfirmPromotionRefused",
}
"""The Gated condition's reason while held at a gate that said no; WAITING before its first answer
(and while a pre-rollout check is asked: its no aborts instead)."""
WAITING = "WaitingForHook"
OPEN = "NotGated"
GATE_HELD = "GateHeld"
GATE_OPENED = "GateOpened"


class Point(enum.StrEnum):
    """Where a release is held."""

    START = "start"  # no pod of the new revision
    STEP = "step"  # the weight stays at the previous step's
    PROMOTION = "promotion"  # the automatic promotion waits


@dataclass(frozen=True)
class Mark:
    """A gate of the release: a hook, at a canary step for confirm-traffic-increase."""

    name: str
    step: int | None = None

    def shown(self) -> str:
        return self.name if self.step is None else f"{self.name} (step {self.step})"


@dataclass(frozen=True)
class Opened:
    mark: Mark
    by: OpenedBy


@dataclass(frozen=True)
class Waiting:
    mark: Mark
    message: str = ""  # the last answer; empty: not answered yet


@dataclass(frozen=True)
class Record:
    """`status.gates`: what the release of `revision` passed and where it is held."""

    revision: str | None = None
    started: bool = False
    opened: tuple[Opened, ...] = ()
    waiting: tuple[Waiting, ...] = ()

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Record:
        gates = status.get("gates") or {}
        return cls(
            revision=gates.get("revision"),
            started=bool(gates.get("started")),
            opened=tuple(
                Opened(Mark(item["name"], item.get("stepIndex")), OpenedBy(item["by"]))
                for item in gates.get("opened") or ()
            ),
            waiting=tuple(
                Waiting(Mark(item["name"], item.get("stepIndex")), item.get("message") or "")
                for item in gates.get("waiting") or ()
            ),
        )

    def to_status(self) -> dict[str, Any]:
        def mark(m: Mark) -> dict[str, Any]:
            return {"name": m.name} | ({"stepIndex": m.step} if m.step is not None else {})

        # The lists always, empty too: the status is written as a merge patch, which leaves alone
        # a nested key that is only missing.
        return {
            "revision": self.revision,
            "started": self.started,
            "opened": [mark(o.mark) | {"by": o.by.value} for o in self.opened],
            "waiting": [mark(w.mark) | ({"message": w.message} if w.message else {}) for w in self.waiting],
        }

    def is_open(self, mark: Mark) -> bool:
        return any(opened.mark == mark for opened in self.opened)

    def for_revision(self, revision: str) -> Record:
        """This record if it is `revision`'s; a new revision starts its gates over."""
        return self if self.revision == revision else Record(revision)


@dataclass(frozen=True)
class Answer:
    """A hook's answer this reconcile: yes is a 2xx; `detail` says what came back."""

    mark: Mark
    yes: bool
    detail: str


@dataclass(frozen=True)
class Hold:
    point: Point
    marks: tuple[Mark, ...]  # the gates (or pre-rollout checks) not passed yet, asked next (a step's
    # confirm-traffic-increase gates carry the step whose weight increase waits)


@dataclass(frozen=True)
class Release:
    """What of the machine's memory the gates read (decide's Memory, without importing decide)."""

    state: State | None
    stable: str | None
    revision: str
    index: int


def hooks_of(plan: Plan, *types: HookType) -> tuple[Hook, ...]:
    return tuple(hook for hook in plan.hooks if hook.type in types)


def releasing(release: Release) -> bool:
    """A release in flight that has not promoted: from a stable revision to another one."""
    return release.stable is not None and release.stable != release.revision and release.state in RUNS_IN


def _closed(plan: Plan, record: Record, kind: HookType, step: int | None = None) -> tuple[Mark, ...]:
    marks = (Mark(hook.name, step) for hook in hooks_of(plan, kind))
    return tuple(mark for mark in marks if not record.is_open(mark))


def _raises_weight(plan: Plan, index: int) -> bool:
    steps = plan.strategy_steps
    step = steps[index]
    return isinstance(step, SetWeight) and step.weight > weight_at(steps, index - 1)


def hold(plan: Plan, record: Record, release: Release) -> Hold | None:
    """Where the release is held by what it has not passed, if anywhere. The blue-green
    promotion is held where the machine would promote (`promotion`), as it depends on the pods."""
    if not plan.hooks or not releasing(release):
        return None
    if not record.started:
        for kind in START:
            closed = _closed(plan, record, kind)
            if closed:
                return Hold(Point.START, closed)
    if release.state is not State.PROGRESSING or plan.kind is not StrategyName.CANARY:
        return None
    index = release.index
    if index < len(plan.steps) and _raises_weight(plan, index):
        closed = _closed(plan, record, HookType.CONFIRM_TRAFFIC_INCREASE, index)
        return Hold(Point.STEP, closed) if closed else None
    if index >= len(plan.steps):
        return promotion(plan, record)
    return None


def promotion(plan: Plan, record: Record) -> Hold | None:
    """The automatic promotion's hold: its confirm-promotion gates not opened yet."""
    closed = _closed(plan, record, HookType.CONFIRM_PROMOTION)
    return Hold(Point.PROMOTION, closed) if closed else None


@dataclass(frozen=True)
class Advanced:
    """The record after this reconcile's answers and a person's opening."""

    record: Record
    abort: str | None = None  # why a check aborts the release: a pre-rollout or rollout no, a rollback yes
    note: str = ""  # an open-gate annotation refused


def _kind(plan: Plan, name: str) -> HookType | None:
    return next((hook.type for hook in plan.hooks if hook.name == name), None)


def advance(plan: Plan, record: Record, answers: tuple[Answer, ...], person: str | None) -> Advanced:
    """Apply the answers (a yes opens its gate or passes its check) and what a person opened:
    `person` names a gate the release is held at; any other name is refused with a note."""
    opened = list(record.opened)
    abort = None
    for answer in answers:
        kind = _kind(plan, answer.mark.name)
        if kind in GATES or kind is HookType.PRE_ROLLOUT:
            if answer.yes and not record.is_open(answer.mark):
                opened.append(Opened(answer.mark, OpenedBy.HOOK))
            elif not answer.yes and kind is HookType.PRE_ROLLOUT:
                abort = abort or f"pre-rollout hook {answer.mark.name} said no: {answer.detail}"
        elif kind is HookType.ROLLOUT and not answer.yes:
            abort = abort or f"rollout hook {answer.mark.name} said no: {answer.detail}"
        elif kind is HookType.ROLLBACK and answer.yes:
            abort = abort or f"rollback hook {answer.mark.name} asked for a rollback: {answer.detail}"
    messages = {answer.mark: answer.detail for answer in answers if not answer.yes}
    waiting = tuple(replace(w, message=messages.get(w.mark, w.message)) for w in record.waiting)
    note = ""
    if person is not None:
        held = [w.mark for w in waiting if w.mark.name == person and _kind(plan, person) in GATES]
        if held:
            opened += [Opened(mark, OpenedBy.PERSON) for mark in held if not record.is_open(mark)]
        else:
            note = f"open-gate {person} ignored: the release is not held at a gate of that name"
    return Advanced(replace(record, opened=tuple(opened), waiting=waiting), abort, note)


def settle(record: Record, held: Hold | None, release: Release) -> Record:
    """The record as the decision leaves the release: held at `held` (keeping each gate's last
    answer), or started once nothing of its start holds it."""
    last = {w.mark: w.message for w in record.waiting}
    waiting = tuple(Waiting(mark, last.get(mark, "")) for mark in held.marks) if held else ()
    started = record.started or (releasing(release) and (held is None or held.point is not Point.START))
    return replace(record, started=started, waiting=waiting)


def gated(plan: Plan, record: Record) -> tuple[bool, str, str] | None:
    """The Gated condition (held, reason, message) of a Rollout with hooks; None without hooks."""
    if not plan.hooks:
        return None
    if not record.waiting:
        return False, OPEN, ""
    first = record.waiting[0]
    kind = _kind(plan, first.mark.name)
    reason = REASONS[kind] if first.message and kind in REASONS else WAITING
    shown = "; ".join(
        f"{w.mark.shown()}: {w.message}" if w.message else f"{w.mark.shown()}: not answered yet"
        for w in record.waiting
    )
    return True, reason, shown


def changes(previous: Record, record: Record) -> list[tuple[tuple[object, ...], str, str]]:
    """The Events of what changed: a gate opened, or one held (its first no). Each is named by
    what it reports (`key`), so the same change, decided again after a restart, is one Event."""
    if previous.revision != record.revision:
        previous = Record(record.revision)
    events: list[tuple[tuple[object, ...], str, str]] = []
    for opened in record.opened:
        if not previous.is_open(opened.mark):
            by = "a person" if opened.by is OpenedBy.PERSON else "its hook"
            key = (record.revision, opened.mark, "opened")
            events.append((key, GATE_OPENED, f"{opened.mark.shown()} opened by {by}"))
    refused_before = {w.mark for w in previous.waiting if w.message}
    for waiting in record.waiting:
        if waiting.message and waiting.mark not in refused_before:
            key = (record.revision, waiting.mark, "held")
            events.append((key, GATE_HELD, f"held at {waiting.mark.shown()}: {waiting.message}"))
    return events


def _asked(plan: Plan, record: Record, release: Release) -> list[tuple[Hook, Mark]]:
    """The hooks asked on their interval: the gates the release is held at, and its rollout and
    rollback hooks once it started."""
    if record.revision != release.revision or not releasing(release):
        return []
    by_name = {hook.name: hook for hook in plan.hooks}
    wanted = [(by_name[w.mark.name], w.mark) for w in record.waiting if w.mark.name in by_name]
    if record.started:
        wanted += [(hook, Mark(hook.name)) for hook in hooks_of(plan, *RUNNING)]
    return wanted


def due(
    plan: Plan,
    record: Record,
    release: Release,
    asked: Mapping[Mark, datetime.datetime],
    now: datetime.datetime,
) -> tuple[tuple[Hook, Mark], ...]:
    """The hooks to ask now: each once its interval has passed since it was last asked (`asked`)."""
    return tuple(
        (hook, mark)
        for hook, mark in _asked(plan, record, release)
        if _remaining(hook, asked.get(mark), now) <= 0
    )


def next_ask(
    plan: Plan,
    record: Record,
    release: Release,
    asked: Mapping[Mark, datetime.datetime],
    now: datetime.datetime,
) -> float | None:
    """Seconds until a hook is due to be asked (0: at once), None when none will be."""
    waits = [max(_remaining(hook, asked.get(mark), now), 0.0) for hook, mark in _asked(plan, record, release)]
    return min(waits) if waits else None


def _remaining(hook: Hook, last: datetime.datetime | None, now: datetime.datetime) -> float:
    return 0.0 if last is None else seconds(hook.interval) - (now - last).total_seconds()


def told(hooks: tuple[Hook, ...], reason: str, previous: Mapping[str, Any]) -> tuple[Hook, ...]:
    """The hooks told of a transition (by its reason; `previous` is the status before it): every
    event hook, and the post-rollout hooks when a release (not a first revision) completed or
    rolled back."""
    released = previous.get("stableRevision") not in (None, previous.get("canaryRevision"))
    ended = reason in (Reason.COMPLETED, Reason.ROLLED_BACK) and released
    kinds = (HookType.EVENT, HookType.POST_ROLLOUT) if ended else (HookType.EVENT,)
    return tuple(hook for hook in hooks if hook.type in kinds)
