"""Bounded waiting for tests: poll a condition with a clear timeout, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float, interval: float = 0.2, what: str = "") -> T:
    """Call `probe` until it returns something truthy and return that; fail after `timeout` seconds.

    Exceptions from the probe count as "not yet", and the last one is shown on timeout.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except Exception as error:  # the probe may fail until the condition holds
            last = error
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not {what or 'true'} within {timeout}s (last: {last!r})")
        time.sleep(interval)
