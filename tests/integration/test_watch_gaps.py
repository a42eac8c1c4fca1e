"""Watch gaps heal: what is deleted while the controller cannot see the apiserver is noticed when
it sees it again, because every relist is diffed against the cache (delivery/kube/informer.py).

The controller reaches the apiserver through a proxy the test cuts (a dropped connection, as in
a partition or an apiserver restart); meanwhile the test deletes objects directly. Without the
diff, the relist after the gap would never say they went: the cache would still hold them and
the reconciles that follow would see nothing to repair.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.cluster import Sandbox
from tests.components import component, wait_condition
from tests.controller import Controller
from tests.proxy import CuttableProxy, kubeconfig_through, partitioned
from tests.rollouts import apply, get, in_shard, replicas_by_revision, rollout, wait_for
from tests.waiting import eventually

pytestmark = pytest.mark.faults

SHARD = "gaps"
GAP = 3.0  # seconds the controller stays cut off: several of its retries fail meanwhile


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[CuttableProxy]:
    with CuttableProxy(("127.0.0.1", sandbox.ports.apiserver)) as running:
        yield running


@pytest.fixture
def behind_proxy(
    sandbox: Sandbox, namespace: str, controller: Controller, proxy: CuttableProxy, tmp_path: Path
) -> Iterator[Controller]:
    """A controller of its own shard that sees the apiserver only through the proxy (the session's
    controller keeps serving the conversion webhook that Components need)."""
    config = kubeconfig_through(sandbox.kubeconfig, proxy, tmp_path / "kubeconfig")
    running = Controller.of_shard(
        sandbox, tmp_path / "delivery.log", SHARD, namespace=namespace, kubeconfig=config
    )
    running.start()
    eventually(lambda: "caches synced" in running.tail() or None, timeout=30, what="the caches synced")
    yield running
    running.stop()


@pytest.mark.usefixtures("behind_proxy")
def test_a_service_deleted_in_a_gap_is_put_back(
    sandbox: Sandbox, namespace: str, proxy: CuttableProxy
) -> None:
    web = in_shard(component("web", namespace), SHARD)
    apply(sandbox, web)
    wait_condition(sandbox, "web", namespace, "Ready")
    before = get(sandbox, "service", "web", namespace)["metadata"]["uid"]

    with partitioned(proxy):
        sandbox.kubectl_run("delete", "service", "web", "-n", namespace, "--wait=true")
        time.sleep(GAP)

    again = eventually(
        lambda: _uid(sandbox, "service", "web", namespace), timeout=20, what="the Service put back"
    )
    assert again != before


@pytest.mark.usefixtures("behind_proxy")
def test_a_canary_replicaset_deleted_in_a_gap_is_created_again(
    sandbox: Sandbox, namespace: str, proxy: CuttableProxy
) -> None:
    strategy = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": 0}}
    web = in_shard(rollout("web", namespace, "web:1", strategy, replicas=2), SHARD)
    apply(sandbox, web)
    first = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    web["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    apply(sandbox, web)
    canary = wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)["canaryRevision"]
    paused = replicas_by_revision(sandbox, "web", namespace)
    assert set(paused) == {first, canary}

    with partitioned(proxy):
        sandbox.kubectl_run("delete", "rs", f"web-{canary}", "-n", namespace, "--wait=true")
        time.sleep(GAP)

    eventually(
        lambda: replicas_by_revision(sandbox, "web", namespace) == paused or None,
        timeout=20,
        what="the canary ReplicaSet created again",
    )
    assert wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)["canaryRevision"] == canary


def _uid(sandbox: Sandbox, kind: str, name: str, namespace: str) -> str | None:
    selector = f"metadata.name={name}"
    found = json.loads(
        sandbox.kubectl_run("get", kind, "-n", namespace, "--field-selector", selector, "-o", "json")
    )
    items = found["items"]
    return items[0]["metadata"]["uid"] if items else None
