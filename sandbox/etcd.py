"""etcd's v3 JSON gateway, for what a test must do to etcd itself and no client of the apiserver can:
compact its history so that watches resuming from before are refused with `410 Gone`, or change
a key behind the apiserver's back.

Keys are as the apiserver stores them: `/registry/replicasets/<namespace>/<name>`, a custom
resource's under `/registry/<group>/<plural>/<namespace>/<name>` (a few built-ins differ:
Services are under `/registry/services/specs/`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.processes import ComponentFailed

# Written by `compact` just before compacting, so that every earlier write is behind the compaction.
COMPACTION_MARK = "/sandbox/compaction"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Etcd:
    url: str  # http://127.0.0.1:<client port>

    def revision(self) -> int:
        """The current revision: the header of every answer carries it."""
        return int(self._call("range", {"key": _b64(COMPACTION_MARK)})["header"]["revision"])

    def get(self, key: str) -> str | None:
        """The value of `key` as text: for a custom resource, its JSON (built-ins are protobuf)."""
        found = self._call("range", {"key": _b64(key)}).get("kvs") or []
        return base64.b64decode(found[0]["value"]).decode(errors="replace") if found else None

    def put(self, key: str, value: str) -> int:
        """Write `key`; return the revision of the write."""
        return int(self._call("put", {"key": _b64(key), "value": _b64(value)})["header"]["revision"])

    def delete(self, key: str) -> int:
        """Delete `key` as the apiserver never would: no finalizers, no garbage collection of what
        it owns (the collector finds its dependents orphaned later). Return how many keys went."""
        return int(self._call("deleterange", {"key": _b64(key)}).get("deleted", 0))

    def compact(self) -> int:
        """Drop the history of every write so far and return the revision compacted to; done
        physically when this returns. A mark is written first, so the last write before this
        call is behind the compaction too: a watch that resumes from any version seen so far is
        refused with `410 Gone` (a watch resuming from revision r asks for r+1 onwards). The
        apiserver's watch cache still serves what it holds in memory: only a watch served from
        etcd is refused, such as the apiserver's own when it reconnects to etcd."""
        revision = self.put(COMPACTION_MARK, "")
        self._call("compaction", {"revision": revision, "physical": True})
        return revision

    def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/v3/kv/{method}", json=body, timeout=30)
        if response.is_error:
            raise ComponentFailed(f"etcd {method} failed: {response.status_code} {response.text}")
        answer: dict[str, Any] = response.json()
        return answer
