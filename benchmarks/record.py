"""Write a benchmark's figures to benchmarks/results/ with the machine and the date beside them."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def record(name: str, figures: dict[str, Any]) -> Path:
    """Save `figures` as results/<name>-<UTC timestamp>.json and print where."""
    now = datetime.datetime.now(datetime.UTC)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{now:%Y%m%dT%H%M%SZ}.json"
    document = {"benchmark": name, "date": now.isoformat(timespec="seconds"), "machine": machine(), **figures}
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results written to {path.relative_to(RESULTS.parent.parent)}")
    return path


def rss_mib(pid: int) -> float:
    """Resident memory of one process, in MiB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return round(kib / 1024, 1)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def peak_rss_mib(pid: int) -> float:
    """The most resident memory a running process has had, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+)", status)
    return int(found.group(1)) / 1024 if found else 0.0


def controller_requests(log: Path) -> dict[str, int]:
    """The API requests by verb that `delivery run` counted, from the last line it logged at exit."""
    counted: dict[str, int] = json.loads(re.findall(r"API requests by verb: (\{.*\})", log.read_text())[-1])
    return counted
