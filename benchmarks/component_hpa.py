"""Writes per hour of a Component under an autoscaler that changes its replicas every 30 s.

One autoscaled Component (v1beta1, `autoscaling: {minReplicas: 1, maxReplicas: 6, cpuUtilization:
50}`: the controller renders its HorizontalPodAutoscaler) on the sandbox, the controller under an
identity of its own, and a driver under another. The driver makes the replicas change every 30 s
in one of two ways (`--scaler`):

- `hpa` (the default): the real autoscaler of the sandbox's kube-controller-manager does the
  scaling. The driver flips the pods' simulated CPU (kwok's usage annotations, served by
  metrics-server: `tests/usage.py`) every 30 s between 100m (twice the target: scale out) and 10m
  (scale in); the autoscaler's own scale writes are counted as the changes it made;
- `subresource`: the driver writes the Deployment's scale subresource every 30 s as an autoscaler
  does (2, 3, 4, 5, 4, 3, 2, ...), the pods held at the target (the autoscaler's ratio 1: within its
  tolerance it keeps any count, so only the driver moves it).

Every write the apiserver answered in the window is counted by identity from its audit log: the
controller's (the target is 0), the driver's, the autoscaler's and the cluster's own controllers'
that a scale sets off. For contrast, the driver then scales a fixed-size Component (`replicas: 2`)
through its scale subresource every 30 s: the controller puts each scale back, with one
`ReplicasRestored` Event.

The window is shorter than an hour (5 minutes by default); the figures per hour are the window's
counts times 3600 / window, and the results say so.

Run: .venv/bin/python -m benchmarks.component_hpa [--scaler hpa|subresource] [--window 300]
         [--fixed-window 120]
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

from kubernetes import config

from benchmarks.peers.measure import WRITES, received
from benchmarks.record import record
from sandbox.cluster import Sandbox
from sandbox.processes import Managed
from tests.usage import HeldUsage, held_usage

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "default"
CONTROLLER, DRIVER = "delivery-controller", "scale-driver"
AUTOSCALER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
AUTOSCALING = {"minReplicas": 1, "maxReplicas": 6, "cpuUtilization": 50}
AT_TARGET, HIGH, LOW = "50m", "100m", "10m"  # of the python template's 100m CPU request
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


def load(usage: HeldUsage, window: float) -> tuple[float, float, int]:
    """Flip the pods' CPU between HIGH and LOW at the start of every PERIOD of `window`: (start,
    end, flips). The autoscaler follows within a period (metrics 10-20 s behind, a 5 s sync)."""
    start = time.time()
    flips = int(window // PERIOD)
    for index in range(flips):
        time.sleep(max(0.0, start + index * PERIOD - time.time()))
        usage.set(cpu=HIGH if index % 2 == 0 else LOW)
    time.sleep(max(0.0, start + flips * PERIOD - time.time()))
    return start, time.time(), flips


def per_hour(counts: dict[str, int], seconds: float) -> dict[str, float]:
    return {key: round(value * 3600 / seconds, 1) for key, value in counts.items()}


def figures(sandbox: Sandbox, name: str, start: float, end: float) -> dict[str, Any]:
    by_user = writes_by_user(sandbox.audit_events(), start, end)
    totals = {user: sum(counter.values()) for user, counter in sorted(by_user.items())}
    deployment = json.loads(
        kubectl(sandbox, sandbox.kubeconfig, "get", "deployment", name, "-n", NAMESPACE, "-o", "json")
    )
    scaled_by_autoscaler = sum(
        count for what, count in by_user.get(AUTOSCALER, Counter()).items() if what.endswith("/scale")
    )
    return {
        "window_seconds": round(end - start, 1),
        "replica_changes_by_the_autoscaler": scaled_by_autoscaler,
        "replicas_at_the_end": deployment["spec"]["replicas"],
        "writes_in_the_window": totals,
        "writes_per_hour_extrapolated": per_hour(totals, end - start),
        "controller_writes": dict(by_user.get(CONTROLLER, Counter())),
        "writes_by_what": {user: dict(counter.most_common()) for user, counter in sorted(by_user.items())},
    }


def autoscaled(sandbox: Sandbox, driver: Path, scaler: str, window: float) -> dict[str, Any]:
    """The autoscaled Component's window, scaled by `scaler` (see the module's docstring)."""
    api = config.new_client_from_config(config_file=str(driver))
    with held_usage(api, NAMESPACE, "app=scaled", cpu=AT_TARGET) as usage:
        time.sleep(PERIOD)  # metrics-server serves the held usage
        if scaler == "hpa":
            start, end, flips = load(usage, window)
            moves = {"usage_flips": flips}
        else:
            start, end, scales = drive(sandbox, driver, "scaled", window)
            moves = {"scales_by_the_driver": scales}
    api.close()
    return {"scaler": scaler, **moves, **figures(sandbox, "scaled", start, end)}


def start_controller(sandbox: Sandbox, kubeconfig: Path) -> Managed:
    argv = [sys.executable, "-m", "delivery.cli.main", "run", f"--kubeconfig={kubeconfig}", "--webhook=off"]
    return sandbox.spawn_extra("delivery", argv)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scaler", choices=("hpa", "subresource"), default="hpa")
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
        path = sandbox.root / "components.json"
        items = [component("scaled", autoscaling=AUTOSCALING), component("fixed", replicas=2)]
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        sandbox.kubectl_run("apply", "-f", str(path))
        for name in ("scaled", "fixed"):
            wait_ready(sandbox, name)
        print(
            f"autoscaled ({args.scaler}): a change every {PERIOD:.0f} s for {args.window:.0f} s", flush=True
        )
        results: dict[str, Any] = {
            "period_seconds": PERIOD,
            "extrapolated": "per hour = the window's count x 3600 / window seconds",
            "autoscaled": autoscaled(sandbox, driver, args.scaler, args.window),
        }
        if args.fixed_window:
            print(f"fixed size: scaling every {PERIOD:.0f} s for {args.fixed_window:.0f} s", flush=True)
            start, end, scales = drive(sandbox, driver, "fixed", args.fixed_window)
            results["fixed_size"] = {"scales_by_the_driver": scales, **figures(sandbox, "fixed", start, end)}
    print(json.dumps(results, indent=2))
    record("component_hpa", results)


if __name__ == "__main__":
    main()
