"""A running Argo Rollout moves to delivery without a pod restart, by the steps of
docs/coming-from-argo.md: the real Argo Rollouts controller (built from its Go module by
benchmarks/peers/argo_build.py, cached by version) brings a Rollout to Healthy; then Argo lets go
of it (its controller stopped, its Rollout and ReplicaSets deleted with their dependents orphaned),
the pods get the revision label `kubectl delivery convert --revisions` names, Argo's key leaves the
Services' selectors, and the converted Rollout is applied. The ReplicaSet our controller makes
adopts the pods (the ReplicaSet controller claims orphans its selector matches): the same pod UIDs,
Healthy, and then a release through our controller replaces them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.peers import argo_build
from benchmarks.peers.contenders import ARGO
from sandbox.cluster import Sandbox
from sandbox.processes import spawn, wait_until
from tests.controller import Controller
from tests.rollouts import apply, get, service
from tests.waiting import eventually

ARGO_VERSION = "v1.10.2"
ARGO_HASH = "rollouts-pod-template-hash"
OURS = "rollouts.delivery.luojilab.com"  # `rollout` alone is Argo's once both kinds are installed
REPLICAS = 3


def _pods(sandbox: Sandbox, namespace: str) -> list[dict[str, Any]]:
    listing = json.loads(sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json"))
    return [pod for pod in listing["items"] if not pod["metadata"].get("deletionTimestamp")]


def _argo_rollout(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "registry.local/web:1"}]},
            },
            "strategy": {
                "canary": {
                    "canaryService": "web-canary",
                    "stableService": "web-stable",
                    "steps": [{"setWeight": 50}, {"pause": {"duration": 1}}],
                }
            },
        },
    }


def _argo_healthy(sandbox: Sandbox, namespace: str) -> bool | None:
    phase = get(sandbox, "rollouts.argoproj.io", "web", namespace).get("status", {}).get("phase")
    running = [pod for pod in _pods(sandbox, namespace) if pod["status"].get("phase") == "Running"]
    return (phase == "Healthy" and len(running) == REPLICAS) or None


def _taken_over(sandbox: Sandbox, namespace: str, revision: str) -> bool | None:
    status = get(sandbox, OURS, "web", namespace).get("status", {})
    held = (status.get("phase"), status.get("stableRevision"), status.get("availableReplicas"))
    return held == ("Healthy", revision, REPLICAS) or None


def _released(sandbox: Sandbox, namespace: str, before: str) -> dict[str, Any] | None:
    status: dict[str, Any] = get(sandbox, OURS, "web", namespace).get("status", {})
    done = status.get("phase") == "Healthy" and status.get("stableRevision") not in (None, before)
    return status if done else None


@pytest.fixture(scope="module")
def argo(sandbox: Sandbox, crds: None) -> Iterator[argo_build.ArgoBuild]:
    """Argo's build and CRDs, for this module only: with both installed, kubectl's `rollout` names
    Argo's kind (the other tests' `kubectl get rollout` would read Argo's)."""
    built = argo_build.build(ARGO_VERSION)
    definitions = sorted(built.crds.glob("*-crd.yaml"))
    for path in definitions:
        sandbox.kubectl_run("apply", "--server-side", "-f", str(path))
    yield built
    for path in definitions:
        sandbox.kubectl_run("delete", "--ignore-not-found", "-f", str(path))
    # kubectl keeps the server's discovery on disk for hours: until it reads it again, its
    # `rollout` still names Argo's kind and every later `kubectl get rollout` on this sandbox
    # fails (the clean-clone run lost a file of tests so). `api-resources` reads discovery afresh
    # and rewrites that cache; asked until Argo's group has left it.
    eventually(
        lambda: "argoproj.io" not in sandbox.kubectl_run("api-resources", "-o", "name"),
        timeout=60,
        what="Argo's kinds gone from kubectl's discovery",
    )


def test_a_running_argo_rollout_moves_over_keeping_its_pods(
    sandbox: Sandbox, namespace: str, controller: Controller, argo: argo_build.ArgoBuild, tmp_path: Path
) -> None:
    running = spawn(
        "argo-rollouts",
        [*ARGO.argv(sandbox.kubeconfig, argo.binary), f"--namespace={namespace}", "--namespaced"],
        tmp_path / "argo.log",
        detached=False,
    )
    try:
        wait_until(running, lambda: "Started controller" in (tmp_path / "argo.log").read_text(), timeout=60)
        source = _argo_rollout(namespace)
        apply(
            sandbox, service("web-stable", namespace, "web"), service("web-canary", namespace, "web"), source
        )
        eventually(lambda: _argo_healthy(sandbox, namespace), timeout=90, what="Argo's Rollout Healthy")
    finally:
        running.stop()  # step 1: Argo's controller lets go (here: stopped; in a cluster, scaled to 0)
    before = {pod["metadata"]["uid"] for pod in _pods(sandbox, namespace)}
    assert len(before) == REPLICAS
    argo_hash = get(sandbox, "svc", "web-stable", namespace)["spec"]["selector"][ARGO_HASH]

    # step 2: Argo's Rollout and ReplicaSets go, their dependents orphaned: the pods keep running
    sandbox.kubectl_run("delete", "rollouts.argoproj.io", "web", "-n", namespace, "--cascade=orphan")
    sandbox.kubectl_run("delete", "rs", "-n", namespace, "-l", f"app=web,{ARGO_HASH}", "--cascade=orphan")
    eventually(
        lambda: all(not p["metadata"].get("ownerReferences") for p in _pods(sandbox, namespace)) or None,
        timeout=60,
        what="the pods orphaned",
    )
    # step 3: convert, label the pods with the revision the converted Rollout's template hashes to
    manifest = tmp_path / "web-argo.yaml"
    manifest.write_text(yaml.safe_dump(source))
    plugin = [sys.executable, "-m", "delivery.cli.plugin", "convert", "-f", str(manifest)]
    converted = subprocess.run(plugin, capture_output=True, text=True, check=True, timeout=60).stdout
    label = subprocess.run(
        [*plugin, "--revisions"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    sandbox.kubectl_run("label", "pods", "-n", namespace, "-l", "app=web", label)
    # step 4: Argo's revision key out of the Services' selectors (ours is added by the controller)
    for name in ("web-stable", "web-canary"):
        sandbox.kubectl_run(
            "patch",
            "svc",
            name,
            "-n",
            namespace,
            "--type=json",
            "-p",
            json.dumps([{"op": "remove", "path": f"/spec/selector/{ARGO_HASH}"}]),
        )
    # step 5: ours applied
    (tmp_path / "web.yaml").write_text(converted)
    sandbox.kubectl_run("apply", "-n", namespace, "-f", str(tmp_path / "web.yaml"))
    revision = label.split("=", 1)[1]
    eventually(lambda: _taken_over(sandbox, namespace, revision), timeout=60, what="ours Healthy on the pods")
    after = _pods(sandbox, namespace)
    assert {pod["metadata"]["uid"] for pod in after} == before
    assert {pod["metadata"]["ownerReferences"][0]["name"] for pod in after} == {f"web-{revision}"}
    assert get(sandbox, "svc", "web-stable", namespace)["spec"]["selector"] == {
        "app": "web",
        "delivery.luojilab.com/pod-template-hash": revision,
    }
    assert argo_hash  # Argo did select by its revision before

    # a release through our controller completes, its pods new
    sandbox.kubectl_run(
        "patch",
        OURS,
        "web",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(
            [
                {
                    "op": "replace",
                    "path": "/spec/template/spec/containers/0/image",
                    "value": "registry.local/web:2",
                }
            ]
        ),
    )
    status = eventually(
        lambda: _released(sandbox, namespace, revision),
        timeout=120,
        what="the release through our controller",
    )
    released = _pods(sandbox, namespace)
    assert len(released) == REPLICAS
    assert not {pod["metadata"]["uid"] for pod in released} & before
    assert {pod["metadata"]["labels"]["delivery.luojilab.com/pod-template-hash"] for pod in released} == {
        status["stableRevision"]
    }
