"""100 Rollouts releasing at once on the sandbox: how fast the controller reacts, and what it costs.

- reaction delay: from a canary ReplicaSet becoming ready at its step's size (the step's
  condition met, as seen on a watch) to the controller's next status write of that Rollout
  (seen on the same watch), p50 and p99 over every step of every Rollout;
- API requests per Rollout made by the controller's reconciles (counted by the controller);
- the controller's CPU seconds and peak RSS over the whole run.

Run: .venv/bin/python -m benchmarks.rollout_scale [--rollouts 100]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config, watch

from benchmarks.record import controller_requests, cpu_seconds, peak_rss_mib, record
from sandbox.cluster import Sandbox
from sandbox.processes import Managed

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "default"
STEPS = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]


def rollout(name: str, image: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {"canary": {"steps": STEPS, "scaleDownDelaySeconds": 0}},
        },
    }


class Recorder:
    """Every ReplicaSet and Rollout event of the namespace, with the time it was seen."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.stopping = False

    def _follow(self, kind: str, lister: Any, *args: Any) -> None:
        while not self.stopping:
            for event in watch.Watch().stream(lister, *args, timeout_seconds=5):
                with self.lock:
                    self.events.append((time.monotonic(), kind, event["raw_object"]))

    def start(self) -> None:
        apps = client.AppsV1Api(self.api)
        custom = client.CustomObjectsApi(self.api)
        for target in (
            lambda: self._follow("rs", apps.list_namespaced_replica_set, NAMESPACE),
            lambda: self._follow(
                "ro",
                custom.list_namespaced_custom_object,
                "delivery.luojilab.com",
                "v1alpha1",
                NAMESPACE,
                "rollouts",
            ),
        ):
            threading.Thread(target=target, daemon=True).start()


def reaction_delays(events: list[tuple[float, str, dict[str, Any]]]) -> list[float]:
    """For each time a ReplicaSet became ready at a new size, the wait until its Rollout's next
    status write that moved the machine (a higher transition count)."""
    delays: list[float] = []
    settled: dict[str, tuple[int, int]] = {}  # rs name -> (replicas, ready) last seen
    pending: dict[str, float] = {}  # rollout -> when its step's condition was met
    transitions: dict[str, int] = {}
    for at, kind, obj in sorted(events, key=lambda event: event[0]):
        name = obj["metadata"]["name"]
        if kind == "rs":
            owner = obj["metadata"].get("labels", {}).get("delivery.luojilab.com/rollout")
            replicas = obj["spec"].get("replicas", 0)
            ready = (obj.get("status") or {}).get("availableReplicas", 0)
            now_settled = replicas > 0 and ready == replicas
            if owner and now_settled and settled.get(name) != (replicas, ready):
                pending.setdefault(owner, at)
            settled[name] = (replicas, ready)
        else:
            count = (obj.get("status") or {}).get("transitionCount", 0)
            if count > transitions.get(name, 0):
                transitions[name] = count
                met = pending.pop(name, None)
                if met is not None:
                    delays.append(at - met)
    return delays


def wait_all_healthy(custom: client.CustomObjectsApi, count: int, generation: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        listing = cast(
            "dict[str, Any]",
            custom.list_namespaced_custom_object("delivery.luojilab.com", "v1alpha1", NAMESPACE, "rollouts"),
        )
        done = sum(
            1
            for item in listing["items"]
            if (item.get("status") or {}).get("phase") == "Healthy"
            and item["status"].get("observedGeneration") == generation
            and item["status"].get("stableRevision") == item["status"].get("canaryRevision")
        )
        if done == count:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"not all {count} rollouts Healthy at generation {generation} within {timeout:.0f}s")


def apply_all(sandbox: Sandbox, count: int, image: str) -> None:
    items = [rollout(f"ro-{index:03d}", image) for index in range(count)]
    path = sandbox.root / "rollouts.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    sandbox.kubectl_run("apply", "-f", str(path))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=100)
    args = parser.parse_args()
    count: int = args.rollouts
    with tempfile.TemporaryDirectory() as scratch, Sandbox(root=Path(scratch) / "sandbox") as sandbox:
        sandbox.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
        sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        controller: Managed = sandbox.spawn_extra(
            "delivery",
            [
                sys.executable,
                "-m",
                "delivery.cli.main",
                "run",
                f"--kubeconfig={sandbox.kubeconfig}",
                "--webhook=off",
            ],
        )
        api = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
        custom = client.CustomObjectsApi(api)
        recorder = Recorder(api)
        recorder.start()
        apply_all(sandbox, count, "app:1")
        first = wait_all_healthy(custom, count, 1, timeout=600)
        print(f"{count} first releases Healthy in {first:.1f}s; releasing app:2 everywhere", flush=True)
        apply_all(sandbox, count, "app:2")
        release = wait_all_healthy(custom, count, 2, timeout=900)
        print(f"{count} canary releases Healthy in {release:.1f}s", flush=True)
        cpu, rss = cpu_seconds(controller.pid), peak_rss_mib(controller.pid)
        controller.popen.send_signal(signal.SIGTERM)
        controller.popen.wait(timeout=30)
        recorder.stopping = True
        requests = controller_requests(sandbox.root / "logs" / "delivery.log")
        delays = sorted(reaction_delays(recorder.events))
    figures = {
        "rollouts": count,
        "first_release_seconds": round(first, 1),
        "canary_release_seconds": round(release, 1),
        "reaction_delay_seconds": {
            "p50": round(statistics.median(delays), 3),
            "p99": round(delays[int(len(delays) * 0.99) - 1], 3),
            "samples": len(delays),
        },
        "api_requests_per_rollout": round(sum(requests.values()) / count, 1),
        "api_requests_by_verb": requests,
        "controller_cpu_seconds": round(cpu, 1),
        "controller_peak_rss_mib": round(rss, 1),
    }
    print(json.dumps(figures, indent=2))
    record("rollout_scale", figures)


if __name__ == "__main__":
    main()
