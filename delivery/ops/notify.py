"""Notifications: chosen transitions POSTed to web hooks, as JSON and/or as a Slack-compatible text.

A rollout must never wait for a chat server. The reconcile only puts a message in a bounded
queue (full: the message is dropped and counted); one background task sends them with httpx,
retrying with exponential backoff on connection errors, 429 and 5xx. A notification is sent
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
)
ALL_REASONS = "*"
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


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

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks or self.slack)

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
    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max(1, config.queue_size))

    def notify(self, rollout: Object, status: dict[str, Any], note: EventNote) -> None:
        """Queue the message for a transition just recorded; never waits."""
        if not self.config.enabled or not self.config.wanted(note.reason):
            return
        try:
            self._queue.put_nowait(message_of(rollout, status, note))
        except asyncio.QueueFull:
            metrics.NOTIFICATIONS.labels("dropped").inc()
            log.warning("notification queue full: dropped %s of %s", note.reason, rollout["metadata"]["name"])

    async def run(self) -> None:
        """Send queued messages until cancelled."""
        async with httpx.AsyncClient(timeout=self.config.timeout) as client:
            while True:
                message = await self._queue.get()
                targets = [(url, message) for url in self.config.webhooks]
                targets += [(url, slack_text(message)) for url in self.config.slack]
                await asyncio.gather(*(self._send(client, url, body) for url, body in targets))

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
