"""Writes per hour of a Component under an autoscaler that changes its replicas every 30 s.

One autoscaled Component (v1beta1, `autoscaling: {minReplicas: 2, maxReplicas: 6, cpuUtilization:
70}`: the controller renders its HorizontalPodAutoscaler) on the sandbox, the controller under an
identity of its own. A driver, under another identity, writes the Deployment's scale subresource
every 30 s, as the autoscaler does (2, 3, 4, 5, 4, 3, 2, ...: within the range, where the real
autoscaler, with no metrics to read here, leaves the count alone). Every write the apiserver
answered in the window is counted by identity from its audit log: the controller's (the target
is 0), the driver's (one a scale), and the cluster's own controllers' that the scale sets off.

For contrast, the same driver over a fixed-size Component (`replicas: 2`): every scale is put back
by the controller, told by one `ReplicasRestored` Event.

The window is shorter than an hour (5 minutes by default); the figures per hour are the window's
counts times 3600 / window, and the results say so.

Run: .venv/bin/python -m benchmarks.component_hpa [--window 300] [--fixed-window 120]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.peers.measure import WRITES, received
from benchmarks.record import record
from sandbox.cluster import Sandbox
from sandbox.processes import Managed

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "default"
CONTROLLER, DRIVER = "delivery-controller", "hpa-driver"
PERIOD = 30.0
COUNTS = (2, 3, 4, 5, 4, 3)  # then again from 2: a change at every period


def component(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "component.luojilab.com/v1beta1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "workloadType": "Deployment",
            "developLanguage": "python",
            "runType": "server",
            "image": "python-demo:1",
            "port": 8080,
            **spec,
        },
    }


def kubectl(sandbox: Sandbox, kubeconfig: Path, *args: str) -> str:
    """kubectl as the identity of `kubeconfig`."""
    result = subprocess.run(
        [str(sandbox.kubectl), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def wait_ready(sandbox: Sandbox, name: str) -> None:
    kubectl(
        sandbox,
        sandbox.kubeconfig,
        "wait",
        "--for=condition=Ready",
        f"component/{name}",
        "-n",
        NAMESPACE,
        "--timeout=180s",
    )


def writes_by_user(events: Iterable[dict[str, Any]], start: float, end: float) -> dict[str, Counter[str]]:
    """Each identity's writes answered in [start, end), by `verb resource[/subresource]`."""
    seen: dict[str, tuple[str, str]] = {}
    for event in events:
        if event["verb"] in WRITES and start <= received(event) < end:
            ref = event.get("objectRef") or {}
            resource = "/".join(part for part in (ref.get("resource"), ref.get("subresource")) if part)
            seen[event["auditID"]] = (event["user"]["username"], f"{event['verb']} {resource}")
    by_user: dict[str, Counter[str]] = {}
    for user, what in seen.values():
        by_user.setdefault(user, Counter())[what] += 1
    return by_user


def drive(sandbox: Sandbox, driver: Path, name: str, window: float) -> tuple[float, float, int]:
    """Scale `name` through its scale subresource at the start of every PERIOD of `window`: (start,
    end, scales), as seconds since the epoch (the apiserver's clock is this machine's)."""
    start = time.time()
    scales = int(window // PERIOD)
    for index, count in zip(range(scales), itertools.cycle(COUNTS[1:] + COUNTS[:1]), strict=False):
        time.sleep(max(0.0, start + index * PERIOD - time.time()))
        kubectl(sandbox, driver, "scale", "deployment", name, "-n", NAMESPACE, f"--replicas={count}")
    time.sleep(max(0.0, start + scales * PERIOD - time.time()))  # the last scale's aftermath
    return start, time.time(), scales


def per_hour(counts: dict[str, int], seconds: float) -> dict[str, float]:
    return {key: round(value * 3600 / seconds, 1) for key, value in counts.items()}


def measure(sandbox: Sandbox, driver: Path, name: str, window: float) -> dict[str, Any]:
    start, end, scales = drive(sandbox, driver, name, window)
    by_user = writes_by_user(sandbox.audit_events(), start, end)
    totals = {user: sum(counter.values()) for user, counter in sorted(by_user.items())}
    deployment = json.loads(
        kubectl(sandbox, sandbox.kubeconfig, "get", "deployment", name, "-n", NAMESPACE, "-o", "json")
    )
    return {
        "window_seconds": round(end - start, 1),
        "scales_by_the_driver": scales,
        "replicas_at_the_end": deployment["spec"]["replicas"],
        "writes_in_the_window": totals,
        "writes_per_hour_extrapolated": per_hour(totals, end - start),
        "controller_writes": dict(by_user.get(CONTROLLER, Counter())),
        "writes_by_what": {user: dict(counter.most_common()) for user, counter in sorted(by_user.items())},
    }


def start_controller(sandbox: Sandbox, kubeconfig: Path) -> Managed:
    argv = [sys.executable, "-m", "delivery.cli.main", "run", f"--kubeconfig={kubeconfig}", "--webhook=off"]
    return sandbox.spawn_extra("delivery", argv)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=float, default=300, help="seconds of the autoscaled run")
    parser.add_argument(
        "--fixed-window", type=float, default=120, help="seconds of the fixed-size run (0: none)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, Sandbox(root=Path(scratch) / "sandbox") as sandbox:
        sandbox.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
        sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        start_controller(sandbox, sandbox.user_kubeconfig(CONTROLLER))
        driver = sandbox.user_kubeconfig(DRIVER)
        autoscaled = {"minReplicas": 2, "maxReplicas": 6, "cpuUtilization": 70}
        path = sandbox.root / "components.json"
        items = [component("scaled", autoscaling=autoscaled), component("fixed", replicas=2)]
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        sandbox.kubectl_run("apply", "-f", str(path))
        for name in ("scaled", "fixed"):
            wait_ready(sandbox, name)
        time.sleep(PERIOD)  # the autoscaler's first syncs (it raises the defaulted 1 to 2) are over
        print(f"autoscaled: scaling every {PERIOD:.0f} s for {args.window:.0f} s", flush=True)
        figures: dict[str, Any] = {
            "period_seconds": PERIOD,
            "extrapolated": "per hour = the window's count x 3600 / window seconds",
            "autoscaled": measure(sandbox, driver, "scaled", args.window),
        }
        if args.fixed_window:
            print(f"fixed size: scaling every {PERIOD:.0f} s for {args.fixed_window:.0f} s", flush=True)
            figures["fixed_size"] = measure(sandbox, driver, "fixed", args.fixed_window)
    print(json.dumps(figures, indent=2))
    record("component_hpa", figures)


if __name__ == "__main__":
    main()
