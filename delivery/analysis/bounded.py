"""Bounded HTTP calls for the providers: one deadline for the whole request, a cap on the answer.

httpx's timeouts apply to each socket operation, so an endpoint that drips a byte now and then
never trips them, and a client reads whatever body it is sent. A measurement must end, with a value
or an error, in a time the runner can count on and in memory the controller can spare, because
every metric of every Rollout may be measuring at once. So the whole exchange (connect, send,
headers, body) runs under one asyncio deadline, which closes the connection when it passes, and
the body is streamed and dropped as soon as it grows past MAX_BODY. Either is an `Unmeasurable`,
an error measurement: retried by the runner, never a value that could pass a release.

Every connection goes to an address the egress policy (`egress.py`) allowed, checked again at each
redirect, which is followed here rather than by httpx (whose redirects would resolve and connect
on their own). Proxies from the environment are not used: the address checked is the one
connected to. What of an answer comes back into messages is `excerpt`: short and printable.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from delivery.analysis.egress import Egress
from delivery.analysis.provider import Unmeasurable

MAX_BODY = 1024 * 1024
"""Bytes of an answer read at most (1 MiB): far beyond any measurement's JSON, and small enough for
many measurements at once."""
EXCERPT = 200
"""Characters of an unusable answer quoted in the error message, at most: a hint of what came back,
never the answer itself (the message reaches the Rollout's status and Events)."""
MAX_REDIRECTS = 5
"""Redirects followed (each checked against the egress policy) before the request is an error."""
_REDIRECTS = (301, 302, 303, 307, 308)
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
        return excerpt(self.body[: EXCERPT * 4].decode(errors="replace"))


def printable(text: str) -> str:
    """`text` on one line, without control characters: what a response puts into a message cannot
    forge lines of a log or an Event, nor hide in escape sequences."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def excerpt(text: str) -> str:
    """At most EXCERPT printable characters of `text` (from a response), an ellipsis when cut."""
    shown = printable(text)
    return shown if len(shown) <= EXCERPT else shown[: EXCERPT - 1] + "…"


@functools.cache
def tls() -> ssl.SSLContext:
    """The one TLS context of every request, verifying as httpx does by default. Each transport
    would otherwise build its own, loading the CA bundle: about 20 ms of CPU and 0.8 MiB that the
    allocator keeps after it is freed, so 1,000 Rollouts measuring at once held 600 MiB for the
    rest of the process. A context is made to be shared by connections; it holds no connection's
    state."""
    return httpx.create_ssl_context()


async def request(
    who: str,
    method: str,
    url: str,
    deadline: float,
    *,
    egress: Egress,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
    content: bytes | None = None,
    follow_redirects: bool = False,
) -> Answer:
    """The answer to one request, complete within `deadline` seconds and at most MAX_BODY bytes.

    Raises Unmeasurable, its message starting with `who`, when there is no complete answer in time,
    when the body grows past MAX_BODY, or when the request cannot be made at all; `egress.Refused`
    when the policy refuses the address (a redirect's too).
    """
    try:
        target = httpx.URL(url).copy_merge_params(params or {})
        async with (
            asyncio.timeout(deadline),
            # None of httpx's own timeouts: they are per socket operation, the deadline is the whole.
            # A transport of our own: no proxy from the environment between the check and the address.
            httpx.AsyncClient(
                timeout=None,  # noqa: S113 - bounded by the deadline above
                headers=IDENTITY,
                transport=httpx.AsyncHTTPTransport(verify=tls()),
            ) as client,
        ):
            for _hop in range(MAX_REDIRECTS + 1):
                pinned = await egress.pin(who, target)
                sent = dict(headers or {})
                if not any(name.lower() == "host" for name in sent):
                    sent["Host"] = pinned.host_header
                async with client.stream(
                    method, pinned.url, headers=sent, content=content, extensions=pinned.extensions
                ) as response:
                    location = response.headers.get("Location")
                    if follow_redirects and response.status_code in _REDIRECTS and location:
                        target = target.join(location)
                        if response.status_code == 303:
                            method, content = "GET", None
                        continue
                    return await _read(who, response)
            raise Unmeasurable(f"{who}: more than {MAX_REDIRECTS} redirects")
    except TimeoutError as error:
        raise Unmeasurable(f"{who} did not answer in full within {deadline:g}s") from error
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise Unmeasurable(f"{who} unreachable: {str(error) or type(error).__name__}") from error


async def _read(who: str, response: httpx.Response) -> Answer:
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
