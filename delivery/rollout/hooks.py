"""The I/O of release hooks: asking the hooks that are due, and telling the fire-and-forget ones.

What is due and what an answer means is `gates` (pure); this module builds the JSON body, reads
the headers from Secrets (with the consent analysis asks for: `analysis.run.secret_headers`) and
calls through `analysis.hook` (bounded, egress-checked, retried). When each hook was last asked is
kept here, per Rollout and revision, in this process only: a restart asks the held gates at once,
which a question allows (see `gates`).

Told hooks (`event`, `post-rollout`) are sent in the background once the status that records
their transition is written (the controller's `on_transition`), so a release never waits for
them, and at most once: exactly one status write takes `transitionCount` to a number, and a kill
before the send loses that one call, as with notifications (delivery.ops.notify). At most
SENDING calls are under way at once; more are dropped and logged.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from delivery.analysis import hook as http
from delivery.analysis.egress import Egress
from delivery.analysis.provider import Unmeasurable
from delivery.analysis.run import secret_headers
from delivery.api.durations import seconds
from delivery.api.rollout import Hook
from delivery.kube.api import Kube, Object
from delivery.report import EventNote
from delivery.rollout import gates
from delivery.rollout.decide import Decision, Memory, release_of
from delivery.rollout.plan import Plan

log = logging.getLogger(__name__)

SENDING = 256
"""Told hooks under way at once, at most."""

Key = tuple[str, str]  # namespace, name


def body_of(rollout: Object, status: Mapping[str, Any], hook: Hook, step: int | None) -> dict[str, Any]:
    """What a hook is sent: which Rollout, which release and where it stands. Flagger's payload
    (name, namespace, phase, metadata; its checksum is our revision) is a part of it, so Flagger's
    load tester and other receivers written for Flagger read this one."""
    metadata = rollout["metadata"]
    return {
        "name": metadata["name"],
        "namespace": metadata["namespace"],
        "hook": hook.name,
        "type": hook.type.value,
        "revision": status.get("canaryRevision"),
        "stableRevision": status.get("stableRevision"),
        "step": status.get("currentStepIndex") if step is None else step,
        "phase": status.get("phase"),
        "metadata": dict(hook.metadata or {}),
    }


class Gatekeeper:
    def __init__(self, kube: Kube, egress: Callable[[], Egress]) -> None:
        self.kube = kube
        self._egress = egress  # read at each call: the process sets its policy after start
        self._asked: dict[Key, tuple[str, dict[gates.Mark, datetime.datetime]]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def _times(self, key: Key, revision: str) -> dict[gates.Mark, datetime.datetime]:
        kept = self._asked.get(key)
        if kept is None or kept[0] != revision:
            kept = self._asked[key] = (revision, {})
        return kept[1]

    def forget(self, key: Key) -> None:
        """The Rollout is gone: its ask times too."""
        self._asked.pop(key, None)

    async def ask(
        self, rollout: Object, plan: Plan, memory: Memory, revision: str, now: datetime.datetime
    ) -> tuple[gates.Record, tuple[gates.Answer, ...]]:
        """The Rollout's gates record, and the answers of every hook that is due, asked at once."""
        metadata = rollout["metadata"]
        status = rollout.get("status") or {}
        record = gates.Record.from_status(status)
        times = self._times((metadata["namespace"], metadata["name"]), revision)
        due = gates.due(plan, record, release_of(memory, revision), times, now)
        if not due:
            return record, ()
        replies = await asyncio.gather(
            *(self._call(rollout, hook, body_of(rollout, status, hook, mark.step)) for hook, mark in due)
        )
        for _hook, mark in due:
            times[mark] = now
        answers = tuple(
            gates.Answer(mark, reply.yes, reply.detail)
            for (_hook, mark), reply in zip(due, replies, strict=True)
        )
        return record, answers

    def next_ask(
        self, rollout: Object, plan: Plan, decision: Decision, revision: str, now: datetime.datetime
    ) -> float | None:
        """Seconds until a hook of the decided release is due to be asked; None when none will be."""
        if decision.gates is None:
            return None
        metadata = rollout["metadata"]
        times = self._times((metadata["namespace"], metadata["name"]), revision)
        return gates.next_ask(plan, decision.gates, release_of(decision.memory, revision), times, now)

    async def _call(self, rollout: Object, hook: Hook, body: dict[str, Any]) -> http.Reply:
        who = f"hook {hook.name} ({hook.url})"
        try:
            headers = await secret_headers(self.kube, hook.headers or (), rollout["metadata"]["namespace"])
        except Unmeasurable as error:
            return http.Reply(False, str(error))
        return await http.call(
            who,
            hook.url,
            body,
            timeout=seconds(hook.timeout),
            retries=hook.retries,
            headers=headers,
            egress=self._egress(),
        )

    def tell(self, rollout: Object, status: dict[str, Any], note: EventNote) -> None:
        """Send the transition just recorded to the hooks told of it, in the background."""
        hooks = tuple(Hook.model_validate(raw) for raw in rollout["spec"].get("hooks") or ())
        for hook in gates.told(hooks, note.reason, rollout.get("status") or {}):
            if len(self._sending) >= SENDING:
                log.warning("hook %s: %d calls under way; %s not sent", hook.name, SENDING, note.reason)
                continue
            told = {
                "reason": note.reason,
                "message": note.message,
                "transition": status.get("transitionCount"),
            }
            body = body_of(rollout, status, hook, None) | told
            task = asyncio.get_running_loop().create_task(self._told(rollout, hook, body))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _told(self, rollout: Object, hook: Hook, body: dict[str, Any]) -> None:
        reply = await self._call(rollout, hook, body)
        if not reply.yes:
            metadata = rollout["metadata"]
            log.warning(
                "%s/%s: hook %s: %s", metadata["namespace"], metadata["name"], hook.name, reply.detail
            )
