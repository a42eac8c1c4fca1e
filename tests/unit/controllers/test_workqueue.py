"""Events for one key coalesce, a key never runs twice at once, failures back off, timers fire."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from delivery.controllers.workqueue import TRANSIENT_BACKOFF_MAX, WorkQueue


@contextlib.asynccontextmanager
async def running(queue: WorkQueue[str]) -> AsyncIterator[None]:
    task = asyncio.create_task(queue.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def recorder(
    runs: list[str],
    hold: asyncio.Event | None = None,
    result: float | None = None,
    *,
    answers: Iterator[float | None] | None = None,
) -> Callable[[str], Awaitable[float | None]]:
    """A reconcile that records its runs and answers `result`, or the next of `answers` (then None)."""

    async def reconcile(key: str) -> float | None:
        runs.append(key)
        if hold is not None:
            await hold.wait()
        return next(answers, None) if answers is not None else result

    return reconcile


async def test_wakes_before_a_run_coalesce_into_one() -> None:
    runs: list[str] = []
    queue = WorkQueue(recorder(runs), workers=2)
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    async with running(queue):
        await asyncio.sleep(0.05)
    assert sorted(runs) == ["a", "b"]


async def test_a_wake_during_a_run_makes_exactly_one_more_run_and_never_in_parallel() -> None:
    runs: list[str] = []
    hold = asyncio.Event()
    queue = WorkQueue(recorder(runs, hold), workers=4)
    queue.add("a")
    async with running(queue):
        await asyncio.sleep(0.02)
        for _ in range(3):
            queue.add("a")
        await asyncio.sleep(0.02)
        assert runs == ["a"]  # the second run waits for the first, however many workers are free
        hold.set()
        await asyncio.sleep(0.05)
    assert runs == ["a", "a"]


async def test_requeue_after_runs_again_later() -> None:
    runs: list[str] = []
    queue = WorkQueue(recorder(runs, result=0.05), workers=1)
    queue.add("a")
    async with running(queue):
        await asyncio.sleep(0.02)
        assert runs == ["a"]
        await asyncio.sleep(0.08)
    assert runs[:2] == ["a", "a"]


async def test_the_last_run_decides_the_timer_an_earlier_one_asked_for_is_dropped() -> None:
    """A run asked to look again in 0.1 s (a deadline, say); the next run, woken earlier by an event,
    asks for nothing: the first timer does not wake the key again, as after a restart it would not."""
    runs: list[str] = []
    queue = WorkQueue(recorder(runs, answers=iter([0.1, None])), workers=1)
    queue.add("a")
    async with running(queue):
        await asyncio.sleep(0.02)
        queue.add("a")  # an event before the timer is due
        await asyncio.sleep(0.2)
    assert runs == ["a", "a"]


async def test_a_later_run_asking_for_a_later_look_moves_the_timer() -> None:
    runs: list[str] = []
    queue = WorkQueue(recorder(runs, answers=iter([0.05, 0.5])), workers=1)
    queue.add("a")
    async with running(queue):
        await asyncio.sleep(0.02)
        queue.add("a")  # its run asks for 0.5 s: the 0.05 s timer is the earlier run's
        await asyncio.sleep(0.15)
    assert runs == ["a", "a"]


async def failing_runs(error: Exception, seconds: float) -> list[float]:
    """When a reconcile that always raises `error` ran, over `seconds` of a queue's life."""
    times: list[float] = []

    async def failing(key: str) -> float | None:
        times.append(asyncio.get_running_loop().time())
        raise error

    queue = WorkQueue(failing, workers=1)
    queue.add("a")
    async with running(queue):
        await asyncio.sleep(seconds)
    return times


async def test_failures_are_retried_with_growing_delays() -> None:
    times = await failing_runs(RuntimeError("boom"), 0.5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) >= 3
    assert gaps[1] > gaps[0] * 1.5


async def test_a_connection_failure_is_retried_within_a_second_however_often_it_failed() -> None:
    times = await failing_runs(ConnectionRefusedError("apiserver down"), 4.5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) >= 6  # after 0.1, 0.2, 0.4 and 0.8 s, then once a second
    assert max(gaps) < TRANSIENT_BACKOFF_MAX + 0.2


@pytest.mark.parametrize("earlier_first", [True, False])
async def test_the_earliest_timer_wins(earlier_first: bool) -> None:
    runs: list[str] = []
    queue = WorkQueue(recorder(runs), workers=1)
    async with running(queue):
        delays = [0.02, 5.0] if earlier_first else [5.0, 0.02]
        for delay in delays:
            queue.add_after("a", delay)
        await asyncio.sleep(0.1)
    assert runs == ["a"]


async def test_a_closed_queue_collects_keys_but_runs_nothing_until_opened() -> None:
    runs: list[str] = []
    queue = WorkQueue(recorder(runs), workers=2, closed=True)
    async with running(queue):
        queue.add("a")
        queue.add("b")
        await asyncio.sleep(0.05)
        assert runs == []
        queue.open()
        await asyncio.sleep(0.05)
    assert sorted(runs) == ["a", "b"]


async def test_closing_cancels_the_reconcile_in_flight_and_it_runs_again_once_open() -> None:
    started: list[str] = []
    finished: list[str] = []
    hold = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        started.append(key)
        await hold.wait()
        finished.append(key)
        return None

    queue = WorkQueue(reconcile, workers=1)
    queue.add("a")
    async with running(queue):
        await asyncio.sleep(0.02)
        queue.close()  # lost the Lease: the write it was about to make never happens
        hold.set()
        await asyncio.sleep(0.05)
        assert (started, finished) == (["a"], [])
        queue.open()
        await asyncio.sleep(0.05)
    assert (started, finished) == (["a", "a"], ["a"])
