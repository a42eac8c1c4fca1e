"""Fencing: no write leaves a replica whose Lease is not known to be valid at that moment.

Leader election alone cannot promise that two replicas never write at once: a leader whose event
loop was blocked (CPU-bound work, a pause of the process) past the lease duration still has
writes queued, and a standby may already lead. So every write checks, right before it is sent,
that the Lease was renewed less than `renew_deadline` ago, counted on this replica's monotonic
clock from the moment the renewing request was *sent* (the Lease may have been written at any
instant after). The standby waits a whole `lease_duration` (longer than `renew_deadline`) from
the last change it saw, so a write this check lets through was sent while no other replica
could lead. A write refused here raises `Fenced` and is never sent.

The check is made twice: once before the request is handed to the HTTP client, and again by the
request body itself (`FencedBody`), synchronously, right before its bytes go to the socket. The
second is the one that counts: between the two, aiohttp awaits (a thread-pool hop for netrc, the
body's own write task), and a loop stalled there would otherwise send a write checked seconds
earlier. The apiserver acts on a write only once its body has arrived, so a body refused here is
a write never done. What remains is the request's time on the wire, as in client-go.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import BytesPayload


class Fenced(RuntimeError):
    """A write not sent: this replica's Lease is not known to be valid."""


class Fence:
    def __init__(self) -> None:
        self._valid_until = float("-inf")  # time.monotonic(); nothing may be written before a renewal

    def extend(self, until: float) -> None:
        self._valid_until = max(self._valid_until, until)

    def revoke(self) -> None:
        self._valid_until = float("-inf")

    @property
    def valid(self) -> bool:
        return time.monotonic() < self._valid_until

    def check(self, method: str, path: str) -> None:
        if not self.valid:
            raise self.refusal(method, path)

    @staticmethod
    def refusal(method: str, path: str) -> Fenced:
        return Fenced(f"{method} {path} not sent: this replica's Lease is not known to be valid")


class FencedBody(BytesPayload):
    """A request body that checks the fence at the moment it is written to the connection."""

    def __init__(self, value: bytes, fence: Fence, method: str, path: str, **kwargs: Any) -> None:
        super().__init__(value, **kwargs)
        self._fence = fence
        self._method = method
        self._path = path

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        self._fence.check(self._method, self._path)  # nothing awaited between this and the bytes' leaving
        await super().write_with_length(writer, content_length)
