"""How long the sandbox takes to start, cold and warm, and how much memory it holds.

- cold build (only with --cold-build): every binary built from an empty Go build cache and an
  empty binary cache, as on a fresh machine (Go modules still come from the module proxy);
- first start: the first boot in this run (new PKI, empty etcd, binaries maybe not in page cache);
- warm starts: the following boots, median and spread;
- memory: resident size of each component right after boot and after 30 pods were scheduled.

Run: .venv/bin/python -m benchmarks.sandbox_boot [--starts 5] [--cold-build]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.record import record, rss_mib
from sandbox import build
from sandbox.cluster import Sandbox


def cold_build() -> float:
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "DELIVERY_CACHE": f"{scratch}/bin", "GOCACHE": f"{scratch}/gocache"}
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "sandbox", "build"], env=env, check=True)
        return time.monotonic() - started


def boot(root: Path) -> tuple[float, Sandbox]:
    sandbox = Sandbox(root=root)
    started = time.monotonic()
    sandbox.up()
    return time.monotonic() - started, sandbox


def memory(sandbox: Sandbox) -> dict[str, float]:
    return {process.name: rss_mib(process.pid) for process in sandbox.processes}


def schedule_pods(sandbox: Sandbox, count: int) -> None:
    kubectl = [str(sandbox.kubectl), f"--kubeconfig={sandbox.kubeconfig}"]
    subprocess.run(
        [*kubectl, "create", "deployment", "load", "--image=load:1", f"--replicas={count}"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*kubectl, "rollout", "status", "deployment/load", "--timeout=120s"], check=True, capture_output=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--cold-build", action="store_true")
    args = parser.parse_args()

    figures: dict[str, object] = {}
    if args.cold_build:
        figures["cold_build_seconds"] = round(cold_build(), 1)
        print(f"cold build of every binary: {figures['cold_build_seconds']}s")
    build.build_all()

    times: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.starts):
            seconds, sandbox = boot(Path(scratch) / f"boot-{index}")
            times.append(seconds)
            if index == args.starts - 1:
                figures["rss_mib_after_boot"] = memory(sandbox)
                schedule_pods(sandbox, 30)
                figures["rss_mib_with_30_pods"] = memory(sandbox)
            sandbox.down()

    warm = times[1:] or times
    figures |= {
        "first_start_seconds": round(times[0], 2),
        "warm_start_seconds": {
            "median": round(statistics.median(warm), 2),
            "min": round(min(warm), 2),
            "max": round(max(warm), 2),
            "n": len(warm),
        },
    }
    after_boot: dict[str, float] = figures["rss_mib_after_boot"]  # type: ignore[assignment]
    with_pods: dict[str, float] = figures["rss_mib_with_30_pods"]  # type: ignore[assignment]
    print(f"first start: {figures['first_start_seconds']}s")
    print(f"warm starts: median {figures['warm_start_seconds']}")
    print(f"memory after boot: {sum(after_boot.values()):.0f} MiB in all {after_boot}")
    print(f"memory with 30 pods: {sum(with_pods.values()):.0f} MiB in all {with_pods}")
    record("sandbox_boot", figures)


if __name__ == "__main__":
    main()
