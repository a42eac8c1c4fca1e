"""Which failures are the connection's (the apiserver restarting, unreachable, overloaded) rather
than the request's: those are retried soon and often, since they heal by themselves, while a
request the apiserver refused is retried on the usual growing back-off. A write fenced off while
the Lease is in doubt is one of them: it heals when the Lease is renewed (or the queue closes)."""

from __future__ import annotations

import aiohttp

from delivery.kube.api import KubeError
from delivery.kube.fence import Fenced

RETRIED_STATUSES = frozenset({0, 429, 500, 502, 503, 504})


def transient(error: BaseException) -> bool:
    if isinstance(error, KubeError):
        return error.status in RETRIED_STATUSES
    return isinstance(error, OSError | aiohttp.ClientError | TimeoutError | Fenced)
