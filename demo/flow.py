"""The demo behind `make demo`: a canary gated on Prometheus promotes a good version and rolls a
bad one back, by itself, printing the progress.

Run by scripts/demo.sh after `python -m sandbox up`. It starts the simulated traffic (kwok's pods
run nothing; demo.traffic answers for them and Prometheus scrapes it), the controller and
`kubectl delivery dashboard` (its URL printed first, to watch the releases live), all as part of
the sandbox, so they keep running afterwards and `make down` stops everything.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from sandbox.cluster import Sandbox, default_root, free_port

NAME = "demo"
DASHBOARD_PORT = 3100  # kubectl delivery dashboard's own default
ANALYSIS = {"analysis": {"templates": [{"templateName": "demo-error-rate"}]}}
STEPS = [
    {"setWeight": 20},
    ANALYSIS,
    {"setWeight": 50},
    ANALYSIS,
    {"setWeight": 80},
    {"pause": {"duration": "2s"}},
]
# The canary's share of failed requests over the last 10 seconds, as the simulated pods report it.
# A revision that has answered no 5xx yet has no such series: `or vector(0)` makes that a rate of 0.
ERROR_RATE = (
    '(sum(rate(demo_requests_total{revision="{{args.canary-hash}}",code=~"5.."}[10s])) or vector(0))'
    ' / sum(rate(demo_requests_total{revision="{{args.canary-hash}}"}[10s]))'
)


def analysis_template(namespace: str, prometheus: str) -> dict[str, Any]:
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "demo-error-rate", "namespace": namespace},
        "spec": {
            "args": [{"name": "prometheus", "value": prometheus}],
            "metrics": [
                {
                    "name": "error-rate",
                    "provider": {"prometheus": {"address": "{{args.prometheus}}", "query": ERROR_RATE}},
                    "initialDelay": "6s",
                    "interval": "2s",
                    "count": 3,
                    "successCondition": "result[0] < 0.05",
                    "failureLimit": 0,
                }
            ],
        },
    }


def rollout(namespace: str, image: str) -> dict[str, Any]:
    labels = {"app": NAME}
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": NAME, "namespace": namespace},
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
    def __init__(self, sandbox: Sandbox, namespace: str) -> None:
        self.sandbox = sandbox
        self.namespace = namespace
        self.last = ""

    def kubectl(self, *args: str) -> str:
        return self.sandbox.kubectl_run(*args)

    def apply(self, body: dict[str, Any]) -> None:
        path = self.sandbox.root / "demo.yaml"
        path.write_text(yaml.safe_dump(body))
        self.kubectl("apply", "-f", str(path))

    def rollout(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            self.kubectl("get", "rollout", NAME, "-n", self.namespace, "-o", "json")
        )
        return found

    def show(self, status: dict[str, Any]) -> None:
        weights = status.get("weights") or {}
        analysis = (status.get("analysisHistory") or [{}])[-1]
        line = (
            f"  {status.get('phase', '-'):<12} step {status.get('currentStepIndex', 0)}/{len(STEPS)}"
            f"  canary weight {weights.get('canary', 0):>3}%  ready {status.get('readyReplicas', 0)}"
            f"  {status.get('message', '')}"
        )
        if analysis:
            line += f"  [last analysis: {analysis.get('phase')}]"
        if line != self.last:
            print(line, flush=True)
            self.last = line

    def follow(self, until: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.rollout()
            status = found.get("status") or {}
            self.show(status)
            if (
                status.get("phase") == until
                and status.get("observedGeneration") == found["metadata"]["generation"]
            ):
                return status
            time.sleep(0.3)
        raise RuntimeError(f"the rollout did not become {until} within {timeout:.0f}s")


def run(sandbox: Sandbox, namespace: str = "default", start_controller: bool = True) -> tuple[str, str]:
    """The demo on a running sandbox; returns the phases the good and the bad release ended in.
    Without `start_controller`, the CRDs and a controller are already there (the e2e test's)."""
    repo = Path(__file__).resolve().parents[1]
    demo = Demo(sandbox, namespace)
    port = free_port()
    print(f"== simulated traffic for the demo's pods on 127.0.0.1:{port}, scraped by Prometheus", flush=True)
    sandbox.spawn_extra(
        "demo-traffic",
        [
            sys.executable,
            "-m",
            "demo.traffic",
            f"--kubeconfig={sandbox.kubeconfig}",
            f"--namespace={namespace}",
            f"--rollout={NAME}",
            f"--port={port}",
        ],
    )
    if sandbox.prometheus is None:
        raise RuntimeError("the sandbox runs no Prometheus")
    sandbox.prometheus.add_target(f"demo-traffic-{namespace}", f"127.0.0.1:{port}")
    if start_controller:
        print("== installing the CRDs", flush=True)
        demo.kubectl("apply", "--server-side", "-f", str(repo / "crds"))
        demo.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        print("== starting the controller (log: .sandbox/logs/delivery.log)", flush=True)
        sandbox.spawn_extra(
            "delivery",
            # The sandbox's Prometheus listens on loopback, which analysis refuses unless allowed.
            [
                sys.executable,
                "-m",
                "delivery.cli.main",
                "run",
                f"--kubeconfig={sandbox.kubeconfig}",
                "--analysis-allow=127.0.0.1",
            ],
        )
    demo.apply(analysis_template(namespace, sandbox.prometheus_url))
    print("== first release of demo:1 (a first release has no steps)", flush=True)
    demo.apply(rollout(namespace, "demo:1"))
    demo.follow("Healthy")
    print("== a good release, demo:2: every analysis passes, it is promoted", flush=True)
    demo.apply(rollout(namespace, "demo:2"))
    good = demo.follow("Healthy")["phase"]
    print("== a bad release, demo:3-bad: 30% errors; the analysis fails and it is rolled back", flush=True)
    demo.apply(rollout(namespace, "demo:3-bad"))
    bad = demo.follow("Aborted")["phase"]
    return good, bad


def serve_dashboard(sandbox: Sandbox, namespace: str = "default") -> str:
    """`kubectl delivery dashboard` beside the controller, on port 3100 when free, as part of the
    sandbox (`make down` stops it); its URL, printed now so the releases can be watched live."""
    port = DASHBOARD_PORT if _free(DASHBOARD_PORT) else free_port()
    plugin = Path(sys.executable).parent / "kubectl-delivery"
    sandbox.spawn_extra(
        "dashboard",
        [str(plugin), "dashboard", f"--kubeconfig={sandbox.kubeconfig}", "-n", namespace, f"--port={port}"],
    )
    url = f"http://127.0.0.1:{port}/rollouts/{namespace}/{NAME}"
    print(f"== the dashboard: {url} (log: .sandbox/logs/dashboard.log)", flush=True)
    return url


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=default_root(), help="the sandbox's directory")
    args = parser.parse_args(argv)
    sandbox = Sandbox.load(args.root)
    if not sandbox.alive():
        print(
            "the sandbox is not running: start it with `python -m sandbox up` (make demo does)",
            file=sys.stderr,
        )
        return 1
    dashboard = serve_dashboard(sandbox)
    run(sandbox)
    kubectl = f"{sandbox.kubectl} --kubeconfig {sandbox.kubeconfig}"
    # kubectl takes no flags before a plugin's name: the plugin reads KUBECONFIG instead.
    plugin = f"KUBECONFIG={sandbox.kubeconfig} PATH=$PWD/.venv/bin:$PATH {sandbox.kubectl} delivery"
    print(
        "\nDone: one release promoted, one rolled back by its analysis. Look around:\n"
        f"  the dashboard: {dashboard} (the rollout's page: its steps, weights and analysis charts)\n"
        f"  {plugin} get rollout {NAME} --watch\n"
        f"  {kubectl} get events --field-selector involvedObject.name={NAME}\n"
        f"  {kubectl} get rollout {NAME} -o yaml   # status.analysisHistory: each measurement\n"
        f"  Prometheus: {sandbox.prometheus_url}/graph?g0.expr=rate(demo_requests_total[10s])\n"
        "The controller, the traffic and the dashboard keep running with the sandbox; stop everything "
        "with `make down`.",
        flush=True,
    )
    return 0
