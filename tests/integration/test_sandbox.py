"""The local control plane is real: Deployments get Ready pods on kwok nodes, Prometheus scrapes
loopback targets, and no sandbox process outlives the run that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from sandbox.cluster import Sandbox, free_port
from sandbox.processes import ComponentFailed, spawn, wait_until
from tests.waiting import eventually


def test_deployment_pods_become_ready_on_kwok_nodes(api: client.ApiClient, namespace: str) -> None:
    labels = {"app": "web"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=3,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="web:1")]),
            ),
        ),
    )
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment)

    eventually(
        lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 3,
        timeout=60,
        what="3 ready replicas",
    )
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(pod.status.phase == "Running" for pod in pods)
    assert {pod.spec.node_name for pod in pods} <= {f"kwok-node-{i}" for i in range(3)}


def test_prometheus_scrapes_a_loopback_exporter(sandbox: Sandbox) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("sandbox_probe_value", "A value the test controls", registry=registry)
    gauge.set(42.5)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        assert sandbox.prometheus is not None
        sandbox.prometheus.add_target("probe", f"127.0.0.1:{port}")
        prometheus = PrometheusConnect(url=sandbox.prometheus_url, disable_ssl=True)
        result = eventually(
            lambda: prometheus.custom_query('sandbox_probe_value{job="probe"}'),
            timeout=30,
            what="the probe scraped",
        )
        assert float(result[0]["value"][1]) == 42.5
    finally:
        server.shutdown()
        thread.join()


OWNER_SCRIPT = textwrap.dedent(
    """
    import json, signal, sys, time
    from pathlib import Path
    from sandbox.cluster import Sandbox
    # A run started in the background inherits SIGINT ignored; a terminal's Ctrl-C is not.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sandbox = Sandbox(root=Path(sys.argv[1]), nodes=1)
    with sandbox:
        print(json.dumps([p.pid for p in sandbox.processes]), flush=True)
        time.sleep(600)
    """
)


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_a_killed_owner_leaves_no_sandbox_process(tmp_path: Path, stop_signal: signal.Signals) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(tmp_path / "sandbox")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert owner.stdout is not None
    pids: list[int] = json.loads(owner.stdout.readline())
    assert len(pids) == 7  # etcd, apiserver, controller-manager, scheduler, kwok, metrics-server, Prometheus
    assert all(_pid_alive(pid) for pid in pids)

    owner.send_signal(stop_signal)
    owner.wait(timeout=60)

    eventually(lambda: not any(_pid_alive(pid) for pid in pids), timeout=20, what="every component gone")


def test_a_component_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    process = spawn(
        "broken", ["sh", "-c", "echo cannot bind 127.0.0.1; exit 3"], tmp_path / "broken.log", detached=False
    )
    with pytest.raises(ComponentFailed, match=r"(?s)broken exited before it was ready.*cannot bind"):
        wait_until(process, lambda: False, timeout=10)


def test_gateway_api_crds_are_installed(sandbox: Sandbox, namespace: str) -> None:
    route = f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: {namespace}}}
spec:
  parentRefs: [{{name: gateway}}]
  rules:
  - backendRefs: [{{name: web-stable, port: 80, weight: 100}}]
"""
    path = sandbox.root / f"route-{namespace}.yaml"
    path.write_text(route)
    sandbox.kubectl_run("apply", "-f", str(path))
    weight = sandbox.kubectl_run(
        "get", "httproute", "web", "-n", namespace, "-o", "jsonpath={.spec.rules[0].backendRefs[0].weight}"
    )
    assert weight == "100"
