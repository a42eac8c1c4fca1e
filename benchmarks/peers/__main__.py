"""Delivery against Argo Rollouts on the same sandbox, one controller at a time.

Scenarios (`--scenario`):
- release (the default): N Rollouts in M namespaces released at once (one image change each), for
  delivery, Argo at its shipped client limits (QPS 40, burst 80) and Argo with `--qps 1000 --burst
  2000`, in turn, `--rounds` times; then a minute left idle. Printed side by side, with the ratio of
  delivery to the raised Argo, and written to benchmarks/results/peers-<time>.json.
- idle: N Rollouts already released wait for the controller; how long it takes to bring them all to
  complete, then its memory, CPU and API requests over `--idle-seconds` (300) of nothing to do; then
  a new controller process over the same complete Rollouts, with one of them released as it starts:
  the time to its first write for that release (ready to act), and what the restart requested.
- soak: N Rollouts, `--releases-per-minute` (50) of them released in turn with a Prometheus analysis
  step, for `--soak-seconds` (an hour): memory growth per hour, reaction p99 per 10 minutes, releases
  stuck at the end. `revisionHistoryLimit: 1` and one warm-up release of all before the clock starts
  keep the cluster's ReplicaSets as many throughout, so the growth is the controller's.

Each controller runs under its own client identity, and the apiserver audits every request of those
identities (reads too), so requests are counted where they arrive, the same way for both.

Run: .venv/bin/python -m benchmarks.peers [--scenario release|idle|soak] [--n 100] [--namespaces 10]
It is a benchmark, not a test: minutes of two busy cores, never part of `make test`.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import importlib.metadata
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from kubernetes import client, config

from benchmarks.peers import argo_build, scenario
from benchmarks.peers.contenders import ALL, DEFAULT, Contender, identity
from benchmarks.peers.measure import (
    Key,
    Sampler,
    Watcher,
    audit_kept_from,
    cpu_cores,
    first_write_for,
    percentiles,
    requests_by,
    rss_growth,
    verbs_of,
    what_by,
)
from benchmarks.peers.release import Audited, release_figures, timeline
from benchmarks.record import cpu_seconds, record
from sandbox import cluster
from sandbox.cluster import Sandbox
from sandbox.processes import Managed

REPO = Path(__file__).resolve().parents[2]
PODS_PER_NODE = 250  # the sandbox's kwok nodes' capacity
RELEASE_TIMEOUT = 900.0
SOAK_WINDOW = 600  # seconds: reaction delays are reported per 10 minutes
SOAK_DRAIN = 300  # seconds after the last release for it (or any other) to finish
# The audit log's size before the apiserver rotates it (the sandbox's 100 MB is about 37 minutes of
# a soak, and a rotation drops the older file's writes): one run of both soaks fits in it.
AUDIT_LOG_MAX_MB = 4096


def audit_policy(identities: list[str]) -> dict[str, Any]:
    """The sandbox's policy (every write, by anyone) plus every request of the controllers compared.

    The sandbox audits writes only; the comparison needs the controllers' reads (lists, watches, gets)
    too, and only theirs, so the log stays small however busy the kubelets and the scheduler are.
    """
    ours = {"level": "Metadata", "users": identities}
    return {**cluster.AUDIT_POLICY, "rules": [ours, *cluster.AUDIT_POLICY["rules"]]}


@contextlib.contextmanager
def peer_sandbox(root: Path, rollouts: int, replicas: int, identities: list[str]) -> Iterator[Sandbox]:
    """A sandbox with nodes for every pod of the scenario during a release (the canary surge too)."""
    nodes = max(cluster.DEFAULT_NODES, math.ceil(rollouts * (replicas + 1) / PODS_PER_NODE) + 1)
    with (
        mock.patch.object(cluster, "AUDIT_POLICY", audit_policy(identities)),
        mock.patch.object(cluster, "AUDIT_LOG_MAX_MB", AUDIT_LOG_MAX_MB),
    ):
        sandbox = Sandbox(root=root, nodes=nodes)
        sandbox.up()
    try:
        yield sandbox
    finally:
        sandbox.down()


def install_crds(sandbox: Sandbox, argo_crds: Path) -> None:
    sandbox.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
    for path in sorted(argo_crds.glob("*-crd.yaml")):
        sandbox.kubectl_run("apply", "--server-side", "-f", str(path))
    sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def apply(sandbox: Sandbox, name: str, items: list[dict[str, Any]]) -> None:
    """Server-side apply: one PATCH per object, received by the apiserver in quick succession."""
    path = sandbox.root / f"{name}.json"
    path.write_text(json.dumps(scenario.as_list(items)))
    sandbox.kubectl_run("apply", "--server-side", "--field-manager=peers", "-f", str(path))


def all_complete(contender: Contender, watcher: Watcher, wanted: dict[Key, str]) -> bool:
    """Whether every Rollout of `wanted` is complete at its image, as last seen on the watch."""
    latest = watcher.latest()
    return all(key in latest and contender.complete(latest[key], image) for key, image in wanted.items())


def wait_complete(
    contender: Contender, watcher: Watcher, keys: set[Key], image: str, timeout: float
) -> float:
    """Block until every Rollout of `keys` is complete at `image`, as last seen on the watch."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all_complete(contender, watcher, dict.fromkeys(keys, image)):
            return time.time()
        time.sleep(0.5)
    done = sum(1 for key, obj in watcher.latest().items() if key in keys and contender.complete(obj, image))
    raise RuntimeError(f"{contender.label}: {done}/{len(keys)} complete at {image} in {timeout}s")


@dataclass
class Running:
    """A controller started for one round, with what watches and samples it."""

    process: Managed
    sampler: Sampler
    watcher: Watcher
    started: float

    def stop(self) -> None:
        self.sampler.stop()
        self.watcher.stopping.set()
        self.process.stop()


def start(
    sandbox: Sandbox,
    api: client.ApiClient,
    contender: Contender,
    name: str,
    argo: Path,
    *,
    shard: str | None = None,
    watcher: Watcher | None = None,
) -> Running:
    """The controller (`shard`'s, under an identity of its own) with a sampler, and a watcher
    unless one is given (the shards of one run share it)."""
    if watcher is None:
        watcher = Watcher(api, contender.group, contender.version)
        watcher.start()
    kubeconfig = sandbox.user_kubeconfig(identity(contender.label, shard))
    process = sandbox.spawn_extra(
        f"{name}-{shard}" if shard else name, contender.argv(kubeconfig, argo, shard)
    )
    sampler = Sampler(process.pid)
    sampler.start()
    return Running(process, sampler, watcher, time.time())


def wait_complete_each(
    contender: Contender, watcher: Watcher, groups: dict[str | None, set[Key]], image: str, timeout: float
) -> dict[str | None, float]:
    """When each group of Rollouts (a shard's) was first seen all complete at `image`."""
    started = time.monotonic()
    done: dict[str | None, float] = {}
    while len(done) < len(groups):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{contender.label}: shards {sorted(map(str, set(groups) - set(done)))} late")
        for group, keys in groups.items():
            if group not in done and all_complete(contender, watcher, dict.fromkeys(keys, image)):
                done[group] = time.time()
        time.sleep(0.5)
    return done


def remove(sandbox: Sandbox, plan: scenario.Scenario) -> None:
    """The round's namespaces, gone before the next controller starts, so it sees none of them
    (after the last round the sandbox goes instead: deleting 10,000 Rollouts takes minutes)."""
    sandbox.kubectl_run("delete", "namespace", "--wait=true", "--timeout=600s", *plan.namespace_names())


def idle_figures(
    events: list[dict[str, Any]], label: str, running: Running, start: float, end: float
) -> dict[str, Any]:
    cpu = [cpu for when, cpu, _ in running.sampler.samples if start <= when <= end]
    return {
        "seconds": round(end - start),
        "requests": requests_by(events, label, start, end),
        "requests_by_what": what_by(events, label, start, end),
        "cpu_seconds": round(cpu[-1] - cpu[0], 2) if cpu else float("nan"),
    }


def release_round(
    sandbox: Sandbox,
    api: client.ApiClient,
    contender: Contender,
    plan: scenario.Scenario,
    argo: Path,
    *,
    idle: float,
) -> dict[str, Any]:
    """Create the Rollouts, let the controller complete their first revision, release a new image
    everywhere at once, then leave it idle."""
    apply(sandbox, f"{plan.prefix}-namespaces", [scenario.namespace(ns) for ns in plan.namespace_names()])
    keys = set(plan.placements())
    running = start(sandbox, api, contender, plan.prefix, argo)
    try:
        apply(
            sandbox,
            f"{plan.prefix}-first",
            scenario.rollouts(contender.controller, plan, scenario.FIRST_IMAGE),
        )
        wait_complete(contender, running.watcher, keys, scenario.FIRST_IMAGE, RELEASE_TIMEOUT)
        time.sleep(2)  # the first revision's last writes settle before the release is timed
        since = time.time()
        cpu_before = cpu_seconds(running.process.pid)
        apply(
            sandbox,
            f"{plan.prefix}-release",
            scenario.rollouts(contender.controller, plan, scenario.RELEASED_IMAGE),
        )
        done = wait_complete(contender, running.watcher, keys, scenario.RELEASED_IMAGE, RELEASE_TIMEOUT)
        cpu_release = cpu_seconds(running.process.pid) - cpu_before
        time.sleep(idle)
        events = sandbox.audit_events()
        figures = release_figures(
            contender,
            events,
            running.watcher.snapshot(since),
            keys,
            since=since,
            image=scenario.RELEASED_IMAGE,
        )
        first_change, end = figures.pop("window")
        figures["cpu_seconds"] = round(cpu_release, 2)
        figures["peak_rss_mib"] = running.sampler.peak_rss_mib()
        figures["requests_by_verb_since_start"] = verbs_of(events, contender.label)
        quiet = max(end, done)
        figures["idle"] = idle_figures(events, contender.label, running, quiet, quiet + idle)
        # What the release cost in all: a controller whose Events queue behind its client's rate
        # limit still makes the release's requests after the last Rollout completed.
        figures["requests_through_idle"] = requests_by(events, contender.label, first_change, quiet + idle)
    finally:
        running.stop()
    return figures


def restart_round(
    sandbox: Sandbox,
    api: client.ApiClient,
    contender: Contender,
    plan: scenario.Scenario,
    argo: Path,
    *,
    shards: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The same Rollouts, all complete, and a new controller process, as after an upgrade or a lost
    leader: how long until it acts, and what it costs. One Rollout is released the moment the
    process starts; the controller's first write for it is when it was ready to act on a change.
    With `shards`, the new process is that Rollout's shard's."""
    probe = plan.placements()[0]
    shard = scenario.shard_of(0, shards)
    released = scenario.sharded(
        scenario.rollouts(
            contender.controller, plan, scenario.RELEASED_IMAGE, replicas=scenario.IDLE_REPLICAS
        ),
        shards,
    )[0]
    user = identity(contender.label, shard)
    running = start(sandbox, api, contender, f"{plan.prefix}-restart", argo, shard=shard)
    try:
        apply(sandbox, f"{plan.prefix}-probe", [released])
        done = wait_complete(contender, running.watcher, {probe}, scenario.RELEASED_IMAGE, RELEASE_TIMEOUT)
        time.sleep(10)  # what the restart still does after the probe is through
        end = time.time()
        events = sandbox.audit_events()
        acted = first_write_for(events, user, probe, running.started)
        return {
            "first_write_seconds": None if acted is None else round(acted - running.started, 1),
            "probe_complete_seconds": round(done - running.started, 1),
            "requests": requests_by(events, user, running.started, end),
            "requests_by_what": what_by(events, user, running.started, end),
            "peak_rss_mib": running.sampler.peak_rss_mib(),
        }
    finally:
        running.stop()


def idle_round(
    sandbox: Sandbox,
    api: client.ApiClient,
    contender: Contender,
    plan: scenario.Scenario,
    argo: Path,
    *,
    idle: float,
    shards: tuple[str, ...] = (),
) -> dict[str, Any]:
    """N Rollouts waiting when the controller starts: time to bring all complete, then idleness.
    With `shards`, the Rollouts are labelled round-robin and one controller per shard runs, each
    under its own identity: the figures of each, and their sum (the slowest's time to ready)."""
    apply(sandbox, f"{plan.prefix}-namespaces", [scenario.namespace(ns) for ns in plan.namespace_names()])
    items = scenario.rollouts(
        contender.controller, plan, scenario.FIRST_IMAGE, replicas=scenario.IDLE_REPLICAS
    )
    apply(sandbox, f"{plan.prefix}-rollouts", scenario.sharded(items, shards))
    groups = scenario.by_shard(plan, shards)
    watcher = Watcher(api, contender.group, contender.version)
    watcher.start()
    running = {
        group: start(sandbox, api, contender, plan.prefix, argo, shard=group, watcher=watcher)
        for group in groups
    }
    try:
        ready = wait_complete_each(contender, watcher, groups, scenario.FIRST_IMAGE, RELEASE_TIMEOUT * 4)
        time.sleep(idle)
        end = time.time()
        events = sandbox.audit_events()
        each = {
            group: shard_idle_figures(events, identity(contender.label, group), process, ready[group], end)
            for group, process in running.items()
        }
    finally:
        for process in running.values():
            process.stop()
    figures = each[None] if not shards else {**summed(list(each.values())), "shards": each}
    # Sharded: the restart of the shard of the Rollout it releases (1/N of the Rollouts).
    figures["restart"] = restart_round(sandbox, api, contender, plan, argo, shards=shards)
    return figures


def shard_idle_figures(
    events: list[dict[str, Any]], user: str, running: Running, ready: float, end: float
) -> dict[str, Any]:
    """One controller's figures of the idle scenario: its time to ready, requests, CPU, memory."""
    idle_rss = running.sampler.rss_between(ready, end)
    return {
        "time_to_ready_seconds": round(ready - running.started, 1),
        "requests_to_ready": requests_by(events, user, running.started, ready),
        "idle": idle_figures(events, user, running, ready, end),
        "rss_mib_idle_end": idle_rss[-1] if idle_rss else float("nan"),
        "peak_rss_mib": running.sampler.peak_rss_mib(),
    }


def summed(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """The shards' figures as one controller's: requests, CPU and memory added up, time to ready
    the slowest shard's (the fleet is ready when its last shard is)."""

    def total(*path: str) -> Any:
        return sum(_value(figures, path) for figures in shards)

    return {
        "time_to_ready_seconds": max(figures["time_to_ready_seconds"] for figures in shards),
        "requests_to_ready": {key: int(total("requests_to_ready", key)) for key in ("total", "writes")},
        "idle": {
            "seconds": max(figures["idle"]["seconds"] for figures in shards),
            "requests": {key: int(total("idle", "requests", key)) for key in ("total", "writes")},
            "cpu_seconds": round(total("idle", "cpu_seconds"), 2),
        },
        "rss_mib_idle_end": round(total("rss_mib_idle_end"), 1),
        "peak_rss_mib": round(total("peak_rss_mib"), 1),
    }


def soak_round(
    sandbox: Sandbox,
    api: client.ApiClient,
    contender: Contender,
    plan: scenario.Scenario,
    argo: Path,
    *,
    seconds: float,
    per_minute: int,
) -> dict[str, Any]:
    """One Rollout released after another at `per_minute` for `seconds`, each through a Prometheus
    analysis step, then up to 5 minutes for the last ones to finish. Before the clock starts every
    Rollout is released once (all at once), so each holds its `SOAK_HISTORY` old ReplicaSet already
    and the cluster's objects stay as many throughout."""
    namespaces = [scenario.namespace(ns) for ns in plan.namespace_names()]
    apply(sandbox, f"{plan.prefix}-namespaces", namespaces)
    template = scenario.analysis_template(contender.controller, sandbox.prometheus_url)
    apply(sandbox, f"{plan.prefix}-template", [template])
    placements = plan.placements()
    running = start(sandbox, api, contender, plan.prefix, argo)
    try:
        for image in (scenario.FIRST_IMAGE, scenario.SOAK_WARM_IMAGE):  # the first revision, the warm-up
            manifests = scenario.rollouts(
                contender.controller, plan, image, scenario.SOAK_STEPS, history=scenario.SOAK_HISTORY
            )
            apply(sandbox, f"{plan.prefix}-{image.replace(':', '-')}", manifests)
            wait_complete(contender, running.watcher, set(placements), image, RELEASE_TIMEOUT * 4)
        since = time.time()
        images = dict.fromkeys(placements, scenario.SOAK_WARM_IMAGE)
        released: list[tuple[float, Key, str]] = []
        for count in range(int(seconds * per_minute / 60)):
            time.sleep(max(0.0, since + count * 60 / per_minute - time.time()))
            key = placements[count % len(placements)]
            images[key] = image = f"app:{count + 3}"  # app:1 and app:2 are before the clock starts
            released.append((time.time(), key, image))
            patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
            resource = f"rollouts.{contender.group}"
            sandbox.kubectl_run(
                "patch", resource, key[1], "-n", key[0], "--type=merge", f"-p={json.dumps(patch)}"
            )
        drained = time.monotonic() + SOAK_DRAIN
        while time.monotonic() < drained and not all_complete(contender, running.watcher, images):
            time.sleep(1)
        end = time.time()
        latest = running.watcher.latest()
        figures = soak_figures(contender, sandbox.audit_events(), running, released, since=since, end=end)
        figures["stuck_releases"] = sum(
            1 for key, image in images.items() if not contender.complete(latest[key], image)
        )
    finally:
        running.stop()
    return figures


def soak_figures(
    contender: Contender,
    events: list[dict[str, Any]],
    running: Running,
    released: list[tuple[float, Key, str]],
    *,
    since: float,
    end: float,
) -> dict[str, Any]:
    """Reaction delays per 10-minute window (of the releases begun in it, measured as in the release
    scenario), the worst window's p99, and the slope of RSS after the first 10 minutes."""
    observed = running.watcher.snapshot(since)
    seen_at = [entry[0] for entry in observed]
    audited = Audited.of(contender, events)
    kept_from = audit_kept_from(events)
    delays: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    for at, key, image in released:
        window = int(at - since) // SOAK_WINDOW
        counts[window] = counts.get(window, 0) + 1
        if at < kept_from:
            continue  # its writes may be gone with the rotated log: not timed, and counted as such
        lo, hi = bisect.bisect_left(seen_at, at), bisect.bisect_right(seen_at, at + SOAK_DRAIN)
        found = timeline(contender, audited, observed[lo:hi], {key}, since=at, image=image)
        delays.setdefault(window, []).extend(found.delays)
    p99s = [percentiles(delays[window])["p99"] for window in sorted(delays) if delays[window]]
    windows = [
        {
            "from_minute": window * SOAK_WINDOW // 60,
            "releases": counts[window],
            "reaction_delay_seconds": percentiles(delays.get(window, [])),
        }
        for window in sorted(counts)
    ]
    return {
        "releases": len(released),
        "releases_untimed": sum(1 for at, _key, _image in released if at < kept_from),
        "windows": windows,
        "worst_window_reaction_p99_seconds": max(p99s, default=float("nan")),
        "cpu_cores_after_10_minutes": cpu_cores(running.sampler.samples, since + SOAK_WINDOW, end),
        **rss_growth(running.sampler.samples, since + SOAK_WINDOW, end),
    }


# -- the side-by-side table ---------------------------------------------------------------------------
ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("wall time, image change -> all complete (s)", ("wall_seconds",)),
    ("overhead beyond the pause p50 (s)", ("overhead_beyond_pause_seconds", "p50")),
    ("overhead beyond the pause p99 (s)", ("overhead_beyond_pause_seconds", "p99")),
    ("reaction delay p50 (s)", ("reaction_delay_seconds", "p50")),
    ("reaction delay p99 (s)", ("reaction_delay_seconds", "p99")),
    ("API requests per release, total", ("requests", "total")),
    ("API requests per release, writes", ("requests", "writes")),
    ("API requests per Rollout, total", ("requests_per_rollout", "total")),
    ("API writes per Rollout", ("requests_per_rollout", "writes")),
    ("API requests, release + idle minute", ("requests_through_idle", "total")),
    ("CPU seconds in the release", ("cpu_seconds",)),
    ("peak RSS (MiB)", ("peak_rss_mib",)),
    ("idle 60 s: requests", ("idle", "requests", "total")),
    ("idle 60 s: writes", ("idle", "requests", "writes")),
    ("idle 60 s: CPU seconds", ("idle", "cpu_seconds")),
]
IDLE_ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("time to ready (s)", ("time_to_ready_seconds",)),
    ("requests to ready", ("requests_to_ready", "total")),
    ("idle: requests", ("idle", "requests", "total")),
    ("idle: writes", ("idle", "requests", "writes")),
    ("idle: CPU seconds", ("idle", "cpu_seconds")),
    ("RSS at the end of idle (MiB)", ("rss_mib_idle_end",)),
    ("peak RSS (MiB)", ("peak_rss_mib",)),
    ("restart: first write for a release (s)", ("restart", "first_write_seconds")),
    ("restart: that release complete (s)", ("restart", "probe_complete_seconds")),
    ("restart: requests to then + 10 s", ("restart", "requests", "total")),
    ("restart: writes to then + 10 s", ("restart", "requests", "writes")),
    ("restart: peak RSS (MiB)", ("restart", "peak_rss_mib")),
]

SOAK_ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("releases", ("releases",)),
    ("of which not timed (the audit log rotated away)", ("releases_untimed",)),
    ("stuck releases at the end", ("stuck_releases",)),
    ("reaction delay p99, worst 10 minutes (s)", ("worst_window_reaction_p99_seconds",)),
    ("controller CPU after 10 minutes (cores)", ("cpu_cores_after_10_minutes",)),
    ("RSS at 10 minutes (MiB)", ("rss_mib_at_10_minutes",)),
    ("RSS at the end (MiB)", ("rss_mib_at_end",)),
    ("RSS growth after 10 minutes (MiB/h)", ("rss_growth_mib_per_hour",)),
    ("RSS growth after 10 minutes (%/h)", ("rss_growth_percent_per_hour",)),
]


def _value(figures: dict[str, Any], path: tuple[str, ...]) -> float:
    found: Any = figures
    for part in path:
        found = found[part]
    return float(found)


def median_of_rounds(
    rounds: list[dict[str, Any]], rows: list[tuple[str, tuple[str, ...]]]
) -> dict[str, float]:
    """Each row's median over the rounds: one slow round (a neighbour's test run) does not decide."""
    return {label: statistics.median(_value(figures, path) for figures in rounds) for label, path in rows}


def table(medians: dict[str, dict[str, float]], rows: list[tuple[str, tuple[str, ...]]]) -> str:
    """Delivery, Argo shipped and Argo raised side by side, with delivery / Argo raised."""
    labels = [contender.label for contender in ALL if contender.label in medians]
    header = ["", *labels, "delivery / argo-raised"]
    lines = [header]
    for label, _ in rows:
        values = [medians[name][label] for name in labels]
        ours, raised = medians.get("delivery", {}).get(label), medians.get("argo-raised", {}).get(label)
        ratio = f"{ours / raised:.2f}" if ours is not None and raised else "-"
        lines.append([label, *(f"{value:g}" for value in values), ratio])
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def identities(chosen: list[Contender], shards: tuple[str, ...]) -> list[str]:
    """The client identities whose requests are audited: each controller's, or each of its shards'."""
    return [identity(c.label, shard) for c in chosen for shard in (shards or (None,))]


def delivery_version() -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return f"{importlib.metadata.version('delivery')}+{commit.stdout.strip() or 'unknown'}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=("release", "idle", "soak"), default="release")
    parser.add_argument("--n", type=int, help="Rollouts (default: 100; idle 10,000; soak 1,000)")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="each controller in turn, this many times")
    parser.add_argument(
        "--contenders",
        default=",".join(c.label for c in DEFAULT),
        help="comma-separated labels, run in this order",
    )
    parser.add_argument("--idle-seconds", type=float, help="idle time measured (release: 60, idle: 300)")
    parser.add_argument("--soak-seconds", type=float, default=3600.0)
    parser.add_argument("--releases-per-minute", type=int, default=50)
    parser.add_argument(
        "--shards",
        type=int,
        default=0,
        help="idle only: ours as this many shards (--controller-id), the Rollouts labelled round-robin",
    )
    args = parser.parse_args()
    by_label = {contender.label: contender for contender in ALL}
    chosen = [by_label[label] for label in args.contenders.split(",")]  # in the order given
    shards = scenario.shard_ids(args.shards)
    if shards and (args.scenario != "idle" or any(c.controller != "delivery" for c in chosen)):
        parser.error("--shards: the idle scenario, and delivery's contenders only")
    n: int = args.n or {"release": 100, "idle": 10_000, "soak": 1_000}[args.scenario]
    idle: float = (
        args.idle_seconds if args.idle_seconds is not None else (300.0 if args.scenario == "idle" else 60.0)
    )
    replicas = scenario.IDLE_REPLICAS if args.scenario == "idle" else scenario.REPLICAS
    version = delivery_version()  # the code that runs: a commit made during a long run is not it
    argo = argo_build.build()
    if argo.build_seconds is not None:
        print(f"argo-rollouts {argo.version} built in {argo.build_seconds:.0f}s", flush=True)
    results: dict[str, list[dict[str, Any]]] = {c.label: [] for c in chosen}
    # Two cores shared with other people's test runs: the load says how quiet the machine was.
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory() as scratch,
        peer_sandbox(Path(scratch) / "sandbox", n, replicas, identities(chosen, shards)) as sandbox,
    ):
        install_crds(sandbox, argo.crds)
        api = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
        for round_index in range(args.rounds):
            for contender in chosen:
                plan = scenario.Scenario(f"{contender.label}-r{round_index}", n, args.namespaces)
                what = f"{contender.label}, {n} Rollouts ({args.scenario})"
                print(f"round {round_index + 1}/{args.rounds}: {what}", flush=True)
                if args.scenario == "release":
                    figures = release_round(sandbox, api, contender, plan, argo.binary, idle=idle)
                elif args.scenario == "idle":
                    figures = idle_round(sandbox, api, contender, plan, argo.binary, idle=idle, shards=shards)
                else:
                    figures = soak_round(
                        sandbox,
                        api,
                        contender,
                        plan,
                        argo.binary,
                        seconds=args.soak_seconds,
                        per_minute=args.releases_per_minute,
                    )
                print(json.dumps(figures), flush=True)
                results[contender.label].append(figures)
                if (round_index, contender) != (args.rounds - 1, chosen[-1]):
                    remove(sandbox, plan)  # the sandbox goes with the last round's
    document: dict[str, Any] = {
        "scenario": args.scenario,
        "rollouts": n,
        "namespaces": args.namespaces,
        "rounds": args.rounds,
        "shards": list(shards),
        "versions": {"delivery": version, "argo-rollouts": argo.version},
        "argo_build_seconds": None if argo.build_seconds is None else round(argo.build_seconds),
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "results": results,
    }
    rows = {"release": ROWS, "idle": IDLE_ROWS, "soak": SOAK_ROWS}[args.scenario]
    medians = {label: median_of_rounds(rounds, rows) for label, rounds in results.items()}
    print(table(medians, rows))
    document["medians"] = medians
    record("peers", document)


if __name__ == "__main__":
    main()
