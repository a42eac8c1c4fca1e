"""Crash points for tests, in the manner of etcd's gofail: a controller killed (or stalled) right
before or right after its N-th write to the apiserver, so a test can prove that a kill at *every*
write resumes correctly instead of hoping random sleeps land between writes.

Read once at start from `DELIVERY_FAILPOINTS`, comma-separated `WHEN:N=ACTION`:
- WHEN is `write` (before the N-th write request is sent) or `written` (once its answer came);
- ACTION is `kill` (SIGKILL this process, as a node failure would), `stall:S` (block the event
  loop for S seconds, as CPU-bound work would; the Lease is not renewed meanwhile) or `sleep:S`
  (hold this one request for S seconds while everything else goes on).

Writes are POST, PUT, PATCH and DELETE of the controllers, counted from 1 in the order they are
sent; leader election's own Lease writes are not counted (their number depends on the clock).
Unset, nothing is counted and nothing can fire.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass

ENVIRONMENT = "DELIVERY_FAILPOINTS"
WHEN = ("write", "written")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failpoint:
    when: str
    number: int
    action: str
    seconds: float = 0.0


def parse(text: str) -> tuple[Failpoint, ...]:
    """`write:17=kill,written:3=stall:20` -> failpoints; a malformed term is an error, not ignored."""
    points = []
    for term in filter(None, (part.strip() for part in text.split(","))):
        where, equals, action = term.partition("=")
        when, colon, number = where.partition(":")
        verb, _colon, seconds = action.partition(":")
        if not (equals and colon and when in WHEN and number.isdigit() and int(number) > 0):
            raise ValueError(f"{ENVIRONMENT}: {term!r} is not WHEN:N=ACTION with WHEN in {WHEN}")
        if verb == "kill" and not seconds:
            points.append(Failpoint(when, int(number), verb))
        elif verb in ("stall", "sleep") and seconds.replace(".", "", 1).isdigit():
            points.append(Failpoint(when, int(number), verb, float(seconds)))
        else:
            raise ValueError(f"{ENVIRONMENT}: {term!r}: the action is kill, stall:SECONDS or sleep:SECONDS")
    return tuple(points)


class Failpoints:
    """Counts the writes and fires the failpoint set for each."""

    def __init__(self, points: tuple[Failpoint, ...]) -> None:
        self._points = {(point.when, point.number): point for point in points}
        self.writes = 0

    @classmethod
    def from_environment(cls) -> Failpoints | None:
        text = os.environ.get(ENVIRONMENT, "")
        return cls(parse(text)) if text else None

    async def before_write(self, method: str, path: str) -> int:
        """Count one write about to be sent; its number."""
        self.writes += 1
        await self._fire("write", self.writes, method, path)
        return self.writes

    async def after_write(self, number: int, method: str, path: str) -> None:
        await self._fire("written", number, method, path)

    async def _fire(self, when: str, number: int, method: str, path: str) -> None:
        point = self._points.get((when, number))
        if point is None:
            return
        # Said on stderr, unbuffered, so a test can tell which write a killed process reached.
        print(f"failpoint {when}:{number}={point.action} at {method} {path}", file=sys.stderr, flush=True)
        if point.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif point.action == "stall":
            time.sleep(point.seconds)  # on purpose: the whole event loop stops, as CPU-bound work stops it
        else:
            await asyncio.sleep(point.seconds)
