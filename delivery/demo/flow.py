"""The demo behind `make demo`: the controller on the local control plane releases a good version
(promoted through every step) and a bad one (aborted and rolled back), printing the progress.

Run by scripts/demo.sh after `python -m sandbox up`; the controller stays up afterwards, as part
of the sandbox, so `make down` stops everything.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sandbox.cluster import Sandbox, default_root

NAMESPACE = "default"
NAME = "demo"
ABORT = "delivery.luojilab.com/abort"
STEPS = [
    {"setWeight": 20},
    {"pause": {"duration": "3s"}},
    {"setWeight": 50},
    {"pause": {"duration": "3s"}},
    {"setWeight": 80},
    {"pause": {"duration": "2s"}},
]


def rollout(image: str) -> dict[str, Any]:
    labels = {"app": NAME}
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {
                "canary": {"steps": STEPS, "scaleDownDelaySeconds": 0, "abortScaleDownDelaySeconds": 0}
            },
        },
    }


class Demo:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.last = ""

    def kubectl(self, *args: str) -> str:
        return self.sandbox.kubectl_run(*args)

    def apply(self, body: dict[str, Any]) -> None:
        path = self.sandbox.root / "demo.yaml"
        path.write_text(yaml.safe_dump(body))
        self.kubectl("apply", "-f", str(path))

    def status(self) -> dict[str, Any]:
        found = json.loads(self.kubectl("get", "rollout", NAME, "-n", NAMESPACE, "-o", "json"))
        return found.get("status") or {}

    def show(self, status: dict[str, Any]) -> None:
        weights = status.get("weights") or {}
        line = (
            f"  {status.get('phase', '-'):<12} step {status.get('currentStepIndex', 0)}/{len(STEPS)}"
            f"  canary weight {weights.get('canary', 0):>3}%  ready {status.get('readyReplicas', 0)}"
            f"  {status.get('message', '')}"
        )
        if line != self.last:
            print(line, flush=True)
            self.last = line

    def follow(self, until: str, timeout: float = 120, abort_at_step: int | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            self.show(status)
            if abort_at_step is not None and (status.get("currentStepIndex") or 0) >= abort_at_step:
                print(f"  -> the new version misbehaves: annotating {ABORT}", flush=True)
                self.kubectl("annotate", "rollout", NAME, "-n", NAMESPACE, f"{ABORT}=true", "--overwrite")
                abort_at_step = None
            if status.get("phase") == until and status.get("observedGeneration") == self.generation():
                return status
            time.sleep(0.3)
        raise RuntimeError(f"the rollout did not become {until} within {timeout:.0f}s")

    def generation(self) -> int:
        return int(
            self.kubectl("get", "rollout", NAME, "-n", NAMESPACE, "-o", "jsonpath={.metadata.generation}")
        )


def main() -> int:
    root = default_root()
    sandbox = Sandbox.load(root)
    if not sandbox.alive():
        print(
            "the sandbox is not running: start it with `python -m sandbox up` (make demo does)",
            file=sys.stderr,
        )
        return 1
    repo = Path(__file__).resolve().parent.parent
    demo = Demo(sandbox)
    print("== installing the CRDs", flush=True)
    demo.kubectl("apply", "--server-side", "-f", str(repo / "crds"))
    demo.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    print("== starting the controller (log: .sandbox/logs/delivery.log)", flush=True)
    sandbox.spawn_extra(
        "delivery", [sys.executable, "-m", "delivery.cli.main", "run", f"--kubeconfig={sandbox.kubeconfig}"]
    )
    print("== first release of demo:1 (no steps for a first release)", flush=True)
    demo.apply(rollout("demo:1"))
    demo.follow("Healthy")
    print("== a good release, demo:2: walks every step and is promoted", flush=True)
    demo.apply(rollout("demo:2"))
    demo.follow("Healthy")
    print("== a bad release, demo:3: aborted mid-canary and rolled back", flush=True)
    demo.apply(rollout("demo:3"))
    demo.follow("Aborted", abort_at_step=3)
    kubectl = f"{sandbox.kubectl} --kubeconfig {sandbox.kubeconfig}"
    print(
        "\nDone: one release promoted, one rolled back. Look around:\n"
        f"  {kubectl} get rollout {NAME}\n"
        f"  {kubectl} get events --field-selector involvedObject.name={NAME}\n"
        f"  {kubectl} get rs -l delivery.luojilab.com/rollout={NAME}\n"
        "The controller keeps running with the sandbox; stop everything with `make down`.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
