"""Fencing: no write leaves a replica whose Lease is not known to be valid at that moment.

Leader election alone cannot promise that two replicas never write at once: a leader whose event
loop was blocked (CPU-bound work, a pause of the process) past the lease duration still has
writes queued, and a standby may already lead. So every write checks, right before it is sent,
that the Lease was renewed less than `renew_deadline` ago, counted on this replica's monotonic
clock from the moment the renewing request was *sent* (the Lease may have been written at any
instant after). The standby waits a whole `lease_duration` (longer than `renew_deadline`) from
the last change it saw, so a write this check lets through was sent while no other replica
could lead. A write refused here raises `Fenced` and is never sent.

The window that remains is the request's own time on the wire after the check, as in client-go.
"""

from __future__ import annotations

import time


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
            raise Fenced(f"{method} {path} not sent: this replica's Lease is not known to be valid")
