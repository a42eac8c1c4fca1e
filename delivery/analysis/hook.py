"""One call of a release hook: a JSON POST whose answer is a yes (2xx) or a no, with its retries.

Each attempt is one `bounded.request` (one deadline for the whole request, the answer capped at
1 MiB, the egress policy checked on the address connected to, as every call analysis makes). No
answer in time, an unreachable hook and a 408, 429 or 5xx answer are retried, `retries` times,
after a short pause that doubles; any other answer is final. An address the egress policy refuses
is a no at once: asking again cannot change the policy. What of an answer comes back is a short
printable excerpt, for the Rollout's status and Events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from delivery.analysis import bounded
from delivery.analysis.egress import Egress, Refused
from delivery.analysis.provider import Unmeasurable

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Answers that say "not now" rather than no: retried."""
BACKOFF = 0.5
"""Seconds before the first retry, doubled at each, up to MAX_BACKOFF."""
MAX_BACKOFF = 5.0
"""Seconds between two attempts at most: a reconcile waits for its hooks, so a call takes at most
(1 + retries) x timeout plus these pauses."""


@dataclass(frozen=True)
class Reply:
    yes: bool
    detail: str  # "HTTP 200", "HTTP 403: <excerpt>", "did not answer in full within 5s (2 attempts)"


async def call(
    who: str,
    url: str,
    body: Mapping[str, Any],
    *,
    timeout: float,
    retries: int,
    headers: Mapping[str, str],
    egress: Egress,
    backoff: float = BACKOFF,
) -> Reply:
    """POST `body` to `url`; the reply after at most 1 + `retries` attempts of `timeout` seconds each."""
    content = json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **headers}
    attempts = 1 + retries
    detail = ""
    for attempt in range(1, attempts + 1):
        try:
            answer = await bounded.request(
                who, "POST", url, timeout, egress=egress, headers=sent, content=content
            )
        except Refused as error:
            return Reply(False, str(error))
        except Unmeasurable as error:
            detail = str(error)
        else:
            if httpx.codes.is_success(answer.status):
                return Reply(True, f"HTTP {answer.status}")
            shown = answer.excerpt()
            detail = f"HTTP {answer.status}" + (f": {shown}" if shown else "")
            if answer.status not in RETRYABLE:
                return Reply(False, detail)
        if attempt < attempts:
            await asyncio.sleep(min(backoff * 2 ** (attempt - 1), MAX_BACKOFF))
    return Reply(False, f"{detail} ({attempts} attempts)" if attempts > 1 else detail)
