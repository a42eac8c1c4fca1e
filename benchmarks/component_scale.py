"""1,000 Components on the sandbox: how long a cold controller takes to render them all, what it
writes, and how much memory it holds.

The Components (five-line python servers: a Deployment, a Service and an Ingress each) are applied
before the controller starts, as after an install on a cluster that already has them; then:

- time from the controller's start to every Component `Reconciled` at its generation, and to
  every Component `Ready` (its pod scheduled by the real scheduler and run by kwok);
- API writes per Component (POST, PUT, PATCH, DELETE counted by the controller itself);
- a restart of the controller over the rendered Components: its writes (level-based and
  idempotent, it should make none) after it has had time to look at every Component;
- the controller's CPU seconds and peak RSS.

Run: .venv/bin/python -m benchmarks.component_scale [--components 1000]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config

from benchmarks.record import controller_requests, cpu_seconds, peak_rss_mib, record
from delivery.kube.api import WRITE_VERBS
from sandbox.cluster import Sandbox
from sandbox.processes import Managed

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "default"
GROUP, VERSION = "component.luojilab.com", "v1beta1"
PODS_PER_NODE = 250  # the sandbox's kwok node capacity
IDLE_SECONDS = 60  # the restarted controller's time to look at everything


def component(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Component",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "workloadType": "Deployment",
            "developLanguage": "python",
            "runType": "server",
            "image": "python-demo:1",
            "port": 8080,
            "replicas": 1,
        },
    }


def counts(custom: client.CustomObjectsApi) -> tuple[int, int]:
    """How many Components are Reconciled and how many Ready, each at its generation."""
    listing = cast(
        "dict[str, Any]", custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "components")
    )
    reconciled = ready = 0
    for item in listing["items"]:
        generation = item["metadata"]["generation"]
        held = {
            c["type"]
            for c in (item.get("status") or {}).get("conditions", [])
            if c["status"] == "True" and c.get("observedGeneration") == generation
        }
        reconciled += "Reconciled" in held
        ready += "Ready" in held
    return reconciled, ready


def start_controller(sandbox: Sandbox, name: str) -> Managed:
    return sandbox.spawn_extra(
        name,
        [
            sys.executable,
            "-m",
            "delivery.cli.main",
            "run",
            f"--kubeconfig={sandbox.kubeconfig}",
            "--webhook=off",
        ],
    )


def stop(controller: Managed) -> None:
    controller.popen.send_signal(signal.SIGTERM)
    controller.popen.wait(timeout=60)


def writes(requests: dict[str, int]) -> int:
    return sum(count for verb, count in requests.items() if verb in WRITE_VERBS)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for everything Ready")
    args = parser.parse_args()
    count: int = args.components
    nodes = -(-count // PODS_PER_NODE) + 1
    with (
        tempfile.TemporaryDirectory() as scratch,
        Sandbox(root=Path(scratch) / "sandbox", nodes=nodes) as sandbox,
    ):
        sandbox.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
        sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        items = [component(f"c-{index:04d}") for index in range(count)]
        listing = {"apiVersion": "v1", "kind": "List", "items": items}
        path = sandbox.root / "components.json"
        path.write_text(json.dumps(listing))
        sandbox.kubectl_run("apply", "-f", str(path))
        print(f"{count} Components applied; starting the controller", flush=True)
        api = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
        custom = client.CustomObjectsApi(api)
        controller = start_controller(sandbox, "delivery")
        started = time.monotonic()
        all_reconciled: float | None = None
        while True:
            reconciled, ready = counts(custom)
            elapsed = time.monotonic() - started
            if all_reconciled is None and reconciled == count:
                all_reconciled = elapsed
                print(f"all {count} Reconciled in {elapsed:.1f}s", flush=True)
            if ready == count:
                break
            if elapsed > args.timeout:
                raise SystemExit(f"only {ready} of {count} Ready after {elapsed:.0f}s")
            time.sleep(1)
        all_ready = time.monotonic() - started
        print(f"all {count} Ready in {all_ready:.1f}s", flush=True)
        cpu, rss = cpu_seconds(controller.pid), peak_rss_mib(controller.pid)
        stop(controller)
        log = sandbox.root / "logs" / "delivery.log"
        cold = controller_requests(log)
        restarted = start_controller(sandbox, "delivery-restarted")
        time.sleep(IDLE_SECONDS)
        restart_rss = peak_rss_mib(restarted.pid)
        stop(restarted)
        warm = controller_requests(sandbox.root / "logs" / "delivery-restarted.log")
    figures = {
        "components": count,
        "objects_per_component": 3,
        "cold_start_all_reconciled_seconds": round(all_reconciled or all_ready, 1),
        "cold_start_all_ready_seconds": round(all_ready, 1),
        "writes_per_component": round(writes(cold) / count, 2),
        "api_requests_by_verb": cold,
        "controller_cpu_seconds": round(cpu, 1),
        "controller_peak_rss_mib": round(rss, 1),
        "restart_writes": writes(warm),
        "restart_requests_by_verb": warm,
        "restart_peak_rss_mib": round(restart_rss, 1),
    }
    print(json.dumps(figures, indent=2))
    record("component_scale", figures)


if __name__ == "__main__":
    main()
