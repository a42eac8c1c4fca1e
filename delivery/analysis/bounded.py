"""Bounded HTTP calls for the providers: one deadline for the whole request, a cap on the answer.

httpx's timeouts apply to each socket operation, so an endpoint that drips a byte now and then
never trips them, and a client reads whatever body it is sent. A measurement must end, with a value
or an error, in a time the runner can count on and in memory the controller can spare, because
every metric of every Rollout may be measuring at once. So the whole exchange (connect, send,
headers, body) runs under one asyncio deadline, which closes the connection when it passes, and
the body is streamed and dropped as soon as it grows past MAX_BODY. Either is an `Unmeasurable`,
an error measurement: retried by the runner, never a value that could pass a release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from delivery.analysis.provider import Unmeasurable

MAX_BODY = 1024 * 1024
"""Bytes of an answer read at most (1 MiB): far beyond any measurement's JSON, and small enough for
many measurements at once."""
EXCERPT = 200
"""Bytes of an unusable answer quoted in the error message."""
IDENTITY = {"Accept-Encoding": "identity"}
"""Asked unless the metric's headers say otherwise: an uncompressed answer is as large on the wire
as in memory, so MAX_BODY bounds both (a compressed one could inflate far past it in one chunk)."""


@dataclass(frozen=True)
class Answer:
    """A complete answer: its status and its whole body (MAX_BODY bytes at most)."""

    status: int
    body: bytes

    def excerpt(self) -> str:
        """The start of the body, for a message that says what came back instead of a measurement."""
        return self.body[:EXCERPT].decode(errors="replace")


async def request(
    who: str,
    method: str,
    url: str,
    deadline: float,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
    content: bytes | None = None,
    follow_redirects: bool = False,
) -> Answer:
    """The answer to one request, complete within `deadline` seconds and at most MAX_BODY bytes.

    Raises Unmeasurable, its message starting with `who`, when there is no complete answer in time,
    when the body grows past MAX_BODY, or when the request cannot be made at all.
    """
    try:
        async with (
            asyncio.timeout(deadline),
            # None of httpx's own timeouts: they are per socket operation, the deadline is the whole.
            httpx.AsyncClient(
                timeout=None,  # noqa: S113 - bounded by the deadline above
                headers=IDENTITY,
                follow_redirects=follow_redirects,
            ) as client,
            client.stream(method, url, headers=headers, params=params, content=content) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY:
                    raise Unmeasurable(
                        f"{who}: response exceeded {MAX_BODY / 2**20:g} MiB (HTTP {response.status_code})"
                    )
                chunks.append(chunk)
            return Answer(response.status_code, b"".join(chunks))
    except TimeoutError as error:
        raise Unmeasurable(f"{who} did not answer in full within {deadline:g}s") from error
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise Unmeasurable(f"{who} unreachable: {str(error) or type(error).__name__}") from error
