"""Level-triggered work, as client-go's workqueue does it, for asyncio.

Watch events only say "look at this object again"; the reconcile reads the latest cached state.
So events for one object coalesce: a key is queued at most once, never reconciled by two workers
at a time, and a wake during its reconcile makes exactly one more run afterwards. A reconcile may
ask to be run again later (a timed pause, a scale-down delay); what the last run of a key asked
replaces what earlier runs asked, since each computes every wait from what it observed (as a
restarted controller would, which has no timers but the last run's), so a Rollout that has
nothing left to wait for is not woken by a progress deadline it asked for while it was
progressing. A failing one is retried with exponential backoff so a broken object cannot spin
the controller. A reconcile that failed on the
connection (the apiserver restarting or unreachable) is retried on a back-off capped at one second
instead, so the due step is written within a couple of seconds of the apiserver answering again.

The queue is also where writes are gated for leader election: a standby's queue is closed, so
watch events still collect keys (deduplicated, at most one per object) but no reconcile runs.
Closing cancels the reconciles in flight at once (their keys run again when reopened); the
reconciles are level-based, so one cut short is simply done again by whoever leads next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from delivery.kube.transient import transient
from delivery.ops import logs, metrics

Key = TypeVar("Key", bound=Hashable)

log = logging.getLogger(__name__)

BACKOFF_START = 0.1
BACKOFF_MAX = 30.0
TRANSIENT_BACKOFF_MAX = 1.0  # the cap when the failure was the connection's, not the object's


class WorkQueue(Generic[Key]):
    def __init__(
        self,
        reconcile: Callable[[Key], Awaitable[float | None]],
        workers: int = 4,
        resource: str = "",
        *,
        closed: bool = False,
    ) -> None:
        self._reconcile = reconcile
        self._workers = workers
        self.resource = resource
        self._open = asyncio.Event()
        if not closed:
            self._open.set()
        self._running: set[asyncio.Future[float | None]] = set()
        metrics.QUEUE_DEPTH.labels(resource).set_function(lambda: len(self))
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

    def _drop_timer(self, key: Key) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _reschedule(self, key: Key, delay: float | None) -> None:
        """The timer a run asked for, instead of any an earlier run asked for (None: no timer)."""
        self._drop_timer(key)
        if delay is not None:
            self.add_after(key, delay)

    def forget(self, key: Key) -> None:
        """The object is gone: drop its timer and failure count."""
        self._drop_timer(key)
        self._failures.pop(key, None)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def open(self) -> None:
        """Let reconciles run (this replica leads)."""
        self._open.set()

    def close(self) -> None:
        """Stop writing now: no new reconcile starts and those in flight are cancelled."""
        self._open.clear()
        for task in list(self._running):
            task.cancel()

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
            await self._open.wait()
            key = await self._queue.get()
            if not self._open.is_set():  # closed while this worker waited: leave the key queued
                self._queue.put_nowait(key)
                continue
            self._queued.discard(key)
            self._processing.add(key)
            try:
                delay = await self._run(key)
            finally:
                self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
            self._reschedule(key, delay)

    async def _run(self, key: Key) -> float | None:
        """One reconcile in its own task (so closing can cancel it), timed, counted, logged with its key."""
        logs.OBJECT.set("/".join(map(str, key)) if isinstance(key, tuple) else str(key))
        task = asyncio.ensure_future(self._reconcile(key))
        self._running.add(task)
        started = time.perf_counter()
        delay: float | None = None
        try:
            delay = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the queue itself is stopping
            result = "cancelled"
            self._dirty.add(key)  # cut short by close(): done again once open
        except Exception as error:
            result = "error"
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            connection = transient(error)
            delay = min(
                BACKOFF_START * 2 ** (failures - 1), TRANSIENT_BACKOFF_MAX if connection else BACKOFF_MAX
            )
            if connection:  # the apiserver away: no traceback, it says nothing about the object
                log.warning("reconcile of %s: %r (attempt %d); again in %.1fs", key, error, failures, delay)
            else:
                log.exception("reconcile of %s failed (attempt %d); again in %.1fs", key, failures, delay)
        else:
            result = "ok" if delay is None else "requeue"
            self._failures.pop(key, None)
        finally:
            self._running.discard(task)
            logs.OBJECT.set("")
        metrics.RECONCILES.labels(self.resource, result).inc()
        metrics.RECONCILE_SECONDS.labels(self.resource, result).observe(time.perf_counter() - started)
        return delay
