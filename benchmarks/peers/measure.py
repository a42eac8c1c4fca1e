"""What the peer benchmark measures, from the apiserver's audit log and a watch of the objects.

Times come from the apiserver wherever it has them: a condition seen on the benchmark's watch is dated
by the audited write that made it (the latest such write answered before the watch saw it), so the
benchmark's own lag under load does not count against a controller. The controllers' requests are
counted by their identity in the audit log, not by the controllers themselves.
"""

from __future__ import annotations

import datetime
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import client, watch
from urllib3.exceptions import ProtocolError

from benchmarks.record import cpu_seconds, peak_rss_mib, rss_mib

WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
Key = tuple[str, str]  # (namespace, name)


def timestamp(value: str) -> float:
    """An apiserver (RFC 3339) time as seconds since the epoch."""
    return datetime.datetime.fromisoformat(value).timestamp()


def received(event: dict[str, Any]) -> float:
    return timestamp(event["requestReceivedTimestamp"])


def audit_kept_from(events: list[dict[str, Any]]) -> float:
    """When the audit log that is left begins (+inf: nothing audited). The apiserver rotates its log
    past a size and keeps one old file, so a run longer than the log lost its start: a write before
    this time may be missing, and a release begun before it cannot be timed (its next write found
    would be a later one)."""
    return min((received(event) for event in events), default=math.inf)


def answered(event: dict[str, Any]) -> float:
    return timestamp(event["stageTimestamp"])


def requests_by(events: Iterable[dict[str, Any]], user: str, start: float, end: float) -> dict[str, int]:
    """The requests `user` made in [start, end), by received time: total and writes.

    A watch is audited when it starts and again when it ends; it is one request (one auditID).
    """
    seen: dict[str, str] = {}
    for event in events:
        if event["user"]["username"] == user and start <= received(event) < end:
            seen[event["auditID"]] = event["verb"]
    return {"total": len(seen), "writes": sum(1 for verb in seen.values() if verb in WRITES)}


def what_by(events: Iterable[dict[str, Any]], user: str, start: float, end: float) -> dict[str, int]:
    """The requests of `user` in [start, end) by verb and resource: what a controller spends them on."""
    seen: dict[str, str] = {}
    for event in events:
        if event["user"]["username"] == user and start <= received(event) < end:
            ref = event.get("objectRef") or {}
            resource = "/".join(part for part in (ref.get("resource"), ref.get("subresource")) if part)
            seen[event["auditID"]] = f"{event['verb']} {resource}"
    return dict(Counter(seen.values()).most_common())


def verbs_of(events: Iterable[dict[str, Any]], user: str) -> dict[str, int]:
    """Every request of `user` in the log by verb: that reads (lists, watches) are counted at all."""
    seen = {event["auditID"]: event["verb"] for event in events if event["user"]["username"] == user}
    return dict(sorted(Counter(seen.values()).items()))


def writes_on(
    events: Iterable[dict[str, Any]],
    resource: str,
    *,
    user: str | None = None,
    subresource: str | None = None,
) -> dict[Key, list[dict[str, Any]]]:
    """Successful writes on each object of `resource` (by `user`, of `subresource` when given)."""
    found: dict[Key, list[dict[str, Any]]] = {}
    for event in events:
        ref = event.get("objectRef") or {}
        if (
            event["verb"] in WRITES
            and ref.get("resource") == resource
            and ref.get("name")
            and (user is None or event["user"]["username"] == user)
            and (subresource is None or ref.get("subresource") == subresource)
            and (event.get("responseStatus") or {}).get("code", 500) < 400
        ):
            found.setdefault((ref.get("namespace", ""), ref["name"]), []).append(event)
    return found


def first_write_for(events: Iterable[dict[str, Any]], user: str, rollout: Key, after: float) -> float | None:
    """When `user` first wrote, after `after`, the Rollout `rollout` or an object named for it (its
    ReplicaSets are `<name>-<hash>` in both controllers): the moment it acted on that Rollout."""
    namespace, name = rollout
    times = [
        received(event)
        for event in events
        if event["user"]["username"] == user
        and event["verb"] in WRITES
        and received(event) > after
        and (ref := event.get("objectRef") or {}).get("namespace") == namespace
        and (ref.get("name") == name or str(ref.get("name", "")).startswith(f"{name}-"))
    ]
    return min(times, default=None)


def anchored(seen_at: float, writes: list[dict[str, Any]]) -> float:
    """When a state seen on a watch at `seen_at` was written: the latest write answered by then."""
    before = [answered(event) for event in writes if answered(event) <= seen_at]
    return max(before, default=seen_at)


def next_write_after(moment: float, writes: list[dict[str, Any]]) -> float | None:
    """The first write received after `moment`: the controller's reaction to what happened then."""
    after = [received(event) for event in writes if received(event) > moment]
    return min(after, default=None)


def percentiles(values: list[float]) -> dict[str, float | int]:
    """p50 and p99 (nearest rank) and the sample count, in seconds to the millisecond."""
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "samples": 0}
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(0.99 * len(ordered)) - 1))
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[rank], 3),
        "samples": len(ordered),
    }


def cpu_cores(samples: list[tuple[float, float, float]], start: float, end: float) -> float:
    """The process's CPU seconds per second between the first and the last sample within [start,
    end] (NaN with fewer than two): the share of a core the controller keeps busy."""
    kept = [(when, cpu) for when, cpu, _ in samples if start <= when <= end]
    if len(kept) < 2 or kept[-1][0] <= kept[0][0]:
        return float("nan")
    return round((kept[-1][1] - kept[0][1]) / (kept[-1][0] - kept[0][0]), 3)


def rss_growth(samples: list[tuple[float, float, float]], start: float, end: float) -> dict[str, float]:
    """The slope of RSS from `start` (the soak's first 10 minutes left out: caches filling and the
    allocator finding its size are not growth) to `end`, in MiB and in per cent of the RSS at
    `start` per hour: the figure a leak shows as, whatever the process's size."""
    kept = [(when, rss) for when, _, rss in samples if start <= when <= end]
    if len(kept) < 2:  # a soak shorter than its first 10 minutes
        return dict.fromkeys(
            (
                "rss_mib_at_10_minutes",
                "rss_mib_at_end",
                "rss_growth_mib_per_hour",
                "rss_growth_percent_per_hour",
            ),
            float("nan"),
        )
    slope = statistics.linear_regression([w for w, _ in kept], [r for _, r in kept]).slope * 3600
    return {
        "rss_mib_at_10_minutes": round(kept[0][1], 1),
        "rss_mib_at_end": round(kept[-1][1], 1),
        "rss_growth_mib_per_hour": round(slope, 1),
        "rss_growth_percent_per_hour": round(100 * slope / kept[0][1], 2),
    }


class Watcher:
    """Every Rollout (of one API group) and ReplicaSet event in the cluster, timed as it arrives."""

    def __init__(self, api: client.ApiClient, group: str, version: str) -> None:
        self.api = api
        self.group = group
        self.version = version
        # (when seen, seconds since the epoch; "ro" or "rs"; the object), in the order seen
        self.objects: list[tuple[float, str, dict[str, Any]]] = []
        self.rollouts: dict[Key, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def _follow(self, kind: str, lister: Callable[..., Any], *args: Any) -> None:
        """List and watch, resuming from the last version seen (a relist only after 410 Gone), so
        an hour's soak does not hold every object once per reconnect."""
        version: str | None = None
        while not self.stopping.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(lister, *args, timeout_seconds=30, resource_version=version):
                    obj = event["raw_object"]
                    with self.lock:
                        self.objects.append((time.time(), kind, obj))
                        if kind == "ro":
                            self.rollouts[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
                    if self.stopping.is_set():
                        return
                version = stream.resource_version
            except client.ApiException as error:
                if error.status != 410:
                    raise
                version = None
            except ProtocolError:
                continue  # the apiserver closed the watch (or is going away with the sandbox)

    def start(self) -> None:
        apps = client.AppsV1Api(self.api)
        custom = client.CustomObjectsApi(self.api)
        threading.Thread(
            target=self._follow, args=("rs", apps.list_replica_set_for_all_namespaces), daemon=True
        ).start()
        threading.Thread(
            target=self._follow,
            args=("ro", custom.list_cluster_custom_object, self.group, self.version, "rollouts"),
            daemon=True,
        ).start()

    def latest(self) -> dict[Key, dict[str, Any]]:
        """Each Rollout as last seen."""
        with self.lock:
            return dict(self.rollouts)

    def snapshot(self, since: float) -> list[tuple[float, str, dict[str, Any]]]:
        with self.lock:
            return [entry for entry in self.objects if entry[0] >= since]


class Sampler:
    """A process's CPU seconds and resident memory, sampled twice a second in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []  # (when, cpu seconds, rss MiB)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(0.5):
            self.sample()

    def sample(self) -> tuple[float, float, float]:
        entry = (time.time(), cpu_seconds(self.pid), rss_mib(self.pid))
        self.samples.append(entry)
        return entry

    def start(self) -> None:
        self.sample()
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()

    def peak_rss_mib(self) -> float:
        """The kernel's high-water mark: a peak between two samples counts too."""
        return round(peak_rss_mib(self.pid), 1)

    def rss_between(self, start: float, end: float) -> list[float]:
        return [rss for when, _, rss in self.samples if start <= when <= end]
