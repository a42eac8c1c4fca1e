"""Level-triggered work, as client-go's workqueue does it, for asyncio.

Watch events only say "look at this object again"; the reconcile reads the latest cached state.
So events for one object coalesce: a key is queued at most once, never reconciled by two workers
at a time, and a wake during its reconcile makes exactly one more run afterwards. A reconcile may
ask to be run again later (a timed pause, a scale-down delay); a failing one is retried with
exponential backoff so a broken object cannot spin the controller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)

log = logging.getLogger(__name__)

BACKOFF_START = 0.1
BACKOFF_MAX = 30.0


class WorkQueue(Generic[Key]):
    def __init__(self, reconcile: Callable[[Key], Awaitable[float | None]], workers: int = 4) -> None:
        self._reconcile = reconcile
        self._workers = workers
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}

    def __len__(self) -> int:
        """Keys waiting for a worker (the queue depth)."""
        return len(self._queued)

    def add(self, key: Key) -> None:
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        """Reconcile `key` in `delay` seconds, unless an earlier run is already scheduled."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None and not timer.cancelled() and timer.when() <= due:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def forget(self, key: Key) -> None:
        """The object is gone: drop its timer and failure count."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def run(self) -> None:
        """Run the workers until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(self._work())

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            try:
                delay = await self._reconcile(key)
            except Exception:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_MAX)
                log.exception("reconcile of %s failed (attempt %d); again in %.1fs", key, failures, delay)
            else:
                self._failures.pop(key, None)
            finally:
                self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
            if delay is not None:
                self.add_after(key, delay)
