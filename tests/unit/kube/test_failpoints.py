"""Failpoints are parsed strictly, fire at exactly their write, and cost nothing when unset."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from delivery.kube.failpoints import Failpoint, Failpoints, parse
from delivery.kube.fence import Fence, Fenced


def test_terms_parse_into_failpoints() -> None:
    assert parse("write:17=kill, written:3=stall:2.5,write:1=sleep:1") == (
        Failpoint("write", 17, "kill"),
        Failpoint("written", 3, "stall", 2.5),
        Failpoint("write", 1, "sleep", 1.0),
    )
    assert parse("") == ()


@pytest.mark.parametrize(
    "text",
    ["write=kill", "write:0=kill", "before:3=kill", "write:3=explode", "write:3=stall", "write:x=kill"],
)
def test_a_malformed_term_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="DELIVERY_FAILPOINTS"):
        parse(text)


def test_unset_means_no_failpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DELIVERY_FAILPOINTS", raising=False)
    assert Failpoints.from_environment() is None


async def test_writes_are_counted_and_only_the_chosen_one_fires() -> None:
    points = Failpoints(parse("write:2=sleep:0.3"))
    started = time.monotonic()
    assert await points.before_write("PATCH", "/a") == 1
    assert time.monotonic() - started < 0.2
    assert await points.before_write("POST", "/b") == 2
    assert time.monotonic() - started >= 0.3
    await points.after_write(2, "POST", "/b")  # no `written:2`: nothing
    assert points.writes == 2


async def test_a_stall_blocks_the_whole_loop() -> None:
    points = Failpoints(parse("written:1=stall:0.3"))
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    await points.after_write(1, "PATCH", "/a")
    await asyncio.sleep(0.05)
    task.cancel()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) >= 0.3


def test_a_fence_lets_writes_through_only_before_its_deadline() -> None:
    fence = Fence()
    with pytest.raises(Fenced, match="Lease"):
        fence.check("PATCH", "/x")  # never renewed
    fence.extend(time.monotonic() + 60)
    fence.check("PATCH", "/x")
    fence.extend(time.monotonic() - 1)  # an older renewal never shortens it
    assert fence.valid
    fence.revoke()
    assert not fence.valid
    fence.extend(time.monotonic() - 0.001)
    with pytest.raises(Fenced):
        fence.check("DELETE", "/x")
