"""The figures of one release of N Rollouts, from the audit log and the watch (pure).

- wall time: the first image change received to the last Rollout complete;
- per-Rollout overhead beyond the pause: its completion minus its own image change minus the pause;
- reaction delay: each step's condition met (the new ReplicaSet ready at a new size, dated by the
  ReplicaSet controller's status write; the pause's end, its start plus its duration) to the
  controller's next write on that Rollout or its ReplicaSets, received by the apiserver (a
  controller that scales before it reports has reacted at the scale); also per condition. Argo
  dates a pause from the whole second it began and times it from there, so its pause may be
  shorter than written; delivery dates it to the microsecond;
- the controller's requests in the release window, total and writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from benchmarks.peers.contenders import Contender
from benchmarks.peers.measure import (
    Key,
    anchored,
    next_write_after,
    percentiles,
    received,
    requests_by,
    timestamp,
    what_by,
    writes_on,
)
from benchmarks.peers.scenario import PAUSE_SECONDS


def _owner(obj: dict[str, Any]) -> str | None:
    return next(
        (ref["name"] for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("kind") == "Rollout"),
        None,
    )


@dataclass(frozen=True)
class Audited:
    """The audit log's writes that a release is timed by, indexed once per object (a soak times
    thousands of releases against one log)."""

    changes: dict[Key, list[float]]  # spec writes of the Rollout by anyone but the controller
    rollout_writes: dict[Key, list[dict[str, Any]]]  # the controller's, on the Rollout
    rs_writes: dict[Key, list[dict[str, Any]]]  # the controller's, on each ReplicaSet
    rs_status_writes: dict[Key, list[dict[str, Any]]]  # the ReplicaSet controller's status writes

    @classmethod
    def of(cls, contender: Contender, events: list[dict[str, Any]]) -> Audited:
        changes = {
            key: [
                received(event)
                for event in writes
                if event["user"]["username"] != contender.label
                and (event.get("objectRef") or {}).get("apiGroup") == contender.group
                and not (event.get("objectRef") or {}).get("subresource")
            ]
            for key, writes in writes_on(events, "rollouts").items()
        }
        return cls(
            changes=changes,
            rollout_writes=writes_on(events, "rollouts", user=contender.label),
            rs_writes=writes_on(events, "replicasets", user=contender.label),
            rs_status_writes=writes_on(events, "replicasets", subresource="status"),
        )

    def change(self, key: Key, since: float) -> float | None:
        """When the image change of `key` at or after `since` was received."""
        return min((at for at in self.changes.get(key, []) if at >= since), default=None)


@dataclass(frozen=True)
class Timeline:
    """A release of some Rollouts: each one's image change and completion, and every reaction delay."""

    changes: dict[Key, float]
    completed: dict[Key, float]
    delays: list[float]
    delays_by_condition: dict[str, list[float]]  # "pause ended", "pods ready": where the time goes


def timeline(
    contender: Contender,
    audited: Audited,
    observed: list[tuple[float, str, dict[str, Any]]],
    keys: set[Key],
    *,
    since: float,
    image: str,
) -> Timeline:
    """`since` is just before the image change, `image` the released one."""
    changes = {key: at for key in keys if (at := audited.change(key, since)) is not None}
    controller_writes = audited.rollout_writes
    controller_rs_writes = audited.rs_writes
    status_writes = audited.rs_status_writes
    reactions = {key: list(controller_writes.get(key, [])) for key in keys}
    completed: dict[Key, float] = {}
    conditions: list[tuple[Key, float, str]] = []
    ready_sizes: set[tuple[Key, str, int]] = set()
    paused: set[Key] = set()
    owned: set[Key] = set()  # ReplicaSets whose controller writes count as their Rollout's
    for seen_at, kind, obj in sorted(observed, key=lambda entry: entry[0]):
        meta = obj["metadata"]
        if kind == "ro":
            key = (meta["namespace"], meta["name"])
            if key not in keys:
                continue
            if key not in completed and contender.complete(obj, image):
                completed[key] = anchored(seen_at, controller_writes.get(key, []))
            start = contender.pause_start(obj)
            # a pause of an earlier release may still be recorded: only this release's counts
            if start and timestamp(start) >= math.floor(since) and key not in paused and key not in completed:
                paused.add(key)
                conditions.append((key, timestamp(start) + PAUSE_SECONDS, "pause ended"))
            continue
        owner = _owner(obj)
        key = (meta["namespace"], owner or "")
        if key not in keys:
            continue
        rs_key = (meta["namespace"], meta["name"])
        if rs_key in controller_rs_writes and rs_key not in owned:
            owned.add(rs_key)
            reactions.setdefault(key, []).extend(controller_rs_writes[rs_key])
        if timestamp(meta["creationTimestamp"]) < math.floor(since):
            continue
        replicas = obj["spec"].get("replicas", 0)
        ready = (obj.get("status") or {}).get("availableReplicas", 0)
        if replicas > 0 and ready == replicas and (key, meta["name"], replicas) not in ready_sizes:
            ready_sizes.add((key, meta["name"], replicas))
            conditions.append((key, anchored(seen_at, status_writes.get(rs_key, [])), "pods ready"))
    delays = []
    by_condition: dict[str, list[float]] = {}
    for key, met, what in conditions:
        reaction = next_write_after(met, reactions.get(key, []))
        if reaction is not None:
            delays.append(reaction - met)
            by_condition.setdefault(what, []).append(reaction - met)
    return Timeline(changes, completed, delays, by_condition)


def release_figures(
    contender: Contender,
    events: list[dict[str, Any]],
    observed: list[tuple[float, str, dict[str, Any]]],
    keys: set[Key],
    *,
    since: float,
    image: str,
) -> dict[str, Any]:
    """The figures of a release that every Rollout of `keys` completed (the window it spanned too)."""
    found = timeline(contender, Audited.of(contender, events), observed, keys, since=since, image=image)
    changes, completed = found.changes, found.completed
    missing = keys - completed.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} Rollouts never seen complete, e.g. {sorted(missing)[:3]}")
    start, end = min(changes.values()), max(completed.values())
    requests = requests_by(events, contender.label, start, end + 1e-6)
    return {
        "wall_seconds": round(end - start, 2),
        "overhead_beyond_pause_seconds": percentiles(
            [completed[key] - changes[key] - PAUSE_SECONDS for key in keys if key in changes]
        ),
        "reaction_delay_seconds": percentiles(found.delays),
        "reaction_delay_seconds_by_condition": {
            what: percentiles(delays) for what, delays in sorted(found.delays_by_condition.items())
        },
        "requests": requests,
        "requests_per_rollout": {name: round(count / len(keys), 1) for name, count in requests.items()},
        "requests_per_rollout_by_what": {
            what: round(count / len(keys), 2)
            for what, count in what_by(events, contender.label, start, end + 1e-6).items()
        },
        "window": (start, end),
    }
