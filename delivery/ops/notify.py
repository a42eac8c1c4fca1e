"""Notifications: chosen transitions POSTed to web hooks, as JSON and/or as a Slack-compatible text.

A rollout must never wait for a chat server. The reconcile only puts a message in each hook's
bounded queue (full: the message is dropped and counted); a background task per hook sends them in
order with httpx, retrying with exponential backoff on connection errors, 408, 429 and 5xx, so a
slow or dead hook delays only its own messages. A notification is sent
when its transition's Event is first created, so a restarted or failed-over controller that
re-decides the same transition does not notify twice (at most once: a kill between the Event
and the send loses that one message).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from delivery.analysis.hook import RETRYABLE
from delivery.kube.api import Object
from delivery.machine import Reason
from delivery.ops import metrics
from delivery.report import EventNote, now

log = logging.getLogger(__name__)

DEFAULT_REASONS = (
    Reason.PROMOTED,
    Reason.COMPLETED,
    Reason.ABORTED,
    Reason.ROLLED_BACK,
    Reason.ANALYSIS_FAILED,
    Reason.ANALYSIS_INCONCLUSIVE,
    Reason.DEADLINE_EXCEEDED,
    Reason.EXPERIMENT_FAILED,  # aborts the release, as a failed analysis does
)
ALL_REASONS = "*"


@dataclass(frozen=True)
class NotifyConfig:
    webhooks: tuple[str, ...] = ()  # receive the JSON message
    slack: tuple[str, ...] = ()  # receive {"text": ...}
    reasons: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_REASONS))  # '*': all
    queue_size: int = 256
    attempts: int = 5
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    timeout: float = 10.0

    @classmethod
    def from_flags(cls, webhooks: list[str], slack: list[str], reasons: str, queue_size: int) -> NotifyConfig:
        return cls(
            webhooks=tuple(webhooks),
            slack=tuple(slack),
            reasons=frozenset(reason.strip() for reason in reasons.split(",") if reason.strip()),
            queue_size=queue_size,
        )

    def wanted(self, reason: str) -> bool:
        return ALL_REASONS in self.reasons or reason in self.reasons


def message_of(rollout: Object, status: dict[str, Any], note: EventNote) -> dict[str, Any]:
    """The JSON message: which object, which transition, where it now stands."""
    metadata = rollout["metadata"]
    return {
        "kind": rollout.get("kind", "Rollout"),
        "namespace": metadata["namespace"],
        "name": metadata["name"],
        "reason": note.reason,
        "message": note.message,
        "type": "Warning" if note.warning else "Normal",
        "phase": status.get("phase"),
        "revision": status.get("canaryRevision"),
        "stableRevision": status.get("stableRevision"),
        "step": status.get("currentStepIndex"),
        "time": now(),
    }


def slack_text(message: dict[str, Any]) -> dict[str, str]:
    mark = ":warning: " if message["type"] == "Warning" else ""
    return {
        "text": f"{mark}{message['kind']} {message['namespace']}/{message['name']}: "
        f"*{message['reason']}* {message['message']} (phase {message['phase']}, "
        f"revision {message['revision']})"
    }


class Notifier:
    """One bounded queue and one sender per hook, so a slow or dead hook delays only itself."""

    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self._hooks: list[tuple[str, bool, asyncio.Queue[dict[str, Any]]]] = [
            (url, slack, asyncio.Queue(maxsize=max(1, config.queue_size)))
            for urls, slack in ((config.webhooks, False), (config.slack, True))
            for url in urls
        ]

    def notify(self, rollout: Object, status: dict[str, Any], note: EventNote) -> None:
        """Queue the message for a transition just recorded; never waits."""
        if not self._hooks or not self.config.wanted(note.reason):
            return
        message = message_of(rollout, status, note)
        for url, slack, queue in self._hooks:
            try:
                queue.put_nowait(slack_text(message) if slack else message)
            except asyncio.QueueFull:
                metrics.NOTIFICATIONS.labels("dropped").inc()
                log.warning("notifications to %s queued up: dropped %s", _host(url), note.reason)

    async def run(self) -> None:
        """Send queued messages until cancelled."""
        async with httpx.AsyncClient(timeout=self.config.timeout) as client, asyncio.TaskGroup() as group:
            for url, _slack, queue in self._hooks:
                group.create_task(self._drain(client, url, queue))

    async def _drain(self, client: httpx.AsyncClient, url: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            await self._send(client, url, await queue.get())

    async def _send(self, client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
        delay = self.config.backoff
        for attempt in range(1, self.config.attempts + 1):
            try:
                response = await client.post(url, json=body)
            except httpx.HTTPError as error:
                outcome = f"{type(error).__name__}: {error}"
            else:
                if response.is_success:
                    metrics.NOTIFICATIONS.labels("sent").inc()
                    return
                outcome = f"HTTP {response.status_code}"
                if response.status_code not in RETRYABLE:
                    break
            if attempt < self.config.attempts:
                log.info("notification to %s failed (%s); retry in %.1fs", _host(url), outcome, delay)
                await asyncio.sleep(delay)
                delay *= 2
        metrics.NOTIFICATIONS.labels("failed").inc()
        log.warning("notification to %s failed: %s", _host(url), outcome)


def _host(url: str) -> str:
    """Hook URLs carry secrets (Slack's do): logs name only the host."""
    return httpx.URL(url).host
