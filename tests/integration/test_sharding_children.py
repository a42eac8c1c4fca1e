"""Sharding that scales out: a Rollout's ReplicaSets carry its shard's label, so another shard's
process never receives them; ReplicaSets made before they were labelled are found and relabelled
after an upgrade; a Rollout moved to another shard is taken over with its ReplicaSets, no pod
restarted and no ReplicaSet made again; a Component moved takes its objects along the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from delivery.kube import shard
from delivery.rollout.revision import ROLLOUT_LABEL, template_hash
from sandbox.cluster import Sandbox, free_port
from tests.components import component, pods, wait_condition
from tests.controller import Controller
from tests.rollouts import apply, get, in_shard, rollout, status, wait_for
from tests.waiting import eventually

STRATEGY = {
    "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}], "scaleDownDelaySeconds": 0}
}


def cached(port: int, kind: str) -> int:
    """How many objects of `kind` a controller's informers hold (its `delivery_cached_objects`)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "delivery_cached_objects":
            return int(sum(s.value for s in family.samples if s.labels["kind"] == kind))
    return 0


def replicasets(sandbox: Sandbox, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    listing = json.loads(
        sandbox.kubectl_run("get", "rs", "-n", namespace, "-l", f"{ROLLOUT_LABEL}={name}", "-o", "json")
    )
    return {rs["metadata"]["name"]: rs for rs in listing["items"]}


def pod_uids(sandbox: Sandbox, namespace: str, app: str) -> set[str]:
    listing = json.loads(
        sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json")
    )
    return {
        pod["metadata"]["uid"] for pod in listing["items"] if not pod["metadata"].get("deletionTimestamp")
    }


def released(sandbox: Sandbox, body: dict[str, Any], image: str) -> dict[str, Any]:
    body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    apply(sandbox, body)
    revision = template_hash(body["spec"]["template"])
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    return wait_for(sandbox, name, namespace, timeout=90, phase="Healthy", stableRevision=revision)


def two_shards(sandbox: Sandbox, namespace: str, logs: Path) -> tuple[dict[str, Controller], dict[str, int]]:
    """Controllers of shards a and b in `namespace`, each serving its metrics on a port of its own."""
    ports = {"a": free_port(), "b": free_port()}
    shards = {
        name: Controller.of_shard(
            sandbox,
            logs / f"{name}.log",
            name,
            f"--identity=shard-{name}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={ports[name]}",
            namespace=namespace,
        )
        for name in ("a", "b")
    }
    return shards, ports


def test_children_follow_their_rollouts_shard(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    shards, ports = two_shards(sandbox, namespace, tmp_path)
    body = in_shard(rollout("web", namespace, "web:1", STRATEGY, replicas=2), "a")
    try:
        for running in shards.values():
            running.start()
        released(sandbox, body, "web:1")
        first = replicasets(sandbox, namespace, "web")
        assert [shard.of(rs) for rs in first.values()] == ["a"]
        assert all(shard.LABEL not in rs["spec"]["template"]["metadata"]["labels"] for rs in first.values())
        assert status(sandbox, "web", namespace)[shard.RECORDED] == "a"
        # shard b holds none of a's ReplicaSets (before, every shard watched every Rollout's)
        assert eventually(lambda: cached(ports["a"], "ReplicaSet") == 1, timeout=10)
        assert cached(ports["b"], "ReplicaSet") == 0

        # An earlier version's ReplicaSet: unlabelled, and a status that never recorded a shard.
        shards["a"].stop()
        (old_name,) = first
        sandbox.kubectl_run("label", "rs", old_name, "-n", namespace, f"{shard.LABEL}-")
        forgotten = json.dumps({"status": {shard.RECORDED: None}})
        sandbox.kubectl_run(
            "patch",
            "rollout",
            "web",
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            f"-p={forgotten}",
        )
        shards["a"].start()
        released(sandbox, body, "web:2")  # released from the ReplicaSet found, not a second one of web:1
        upgraded = replicasets(sandbox, namespace, "web")
        assert old_name in upgraded
        assert upgraded[old_name]["metadata"]["uid"] == first[old_name]["metadata"]["uid"]
        assert len(upgraded) == 2
        assert {shard.of(rs) for rs in upgraded.values()} == {"a"}
        assert status(sandbox, "web", namespace)[shard.RECORDED] == "a"

        # Moved to shard b: taken over with its ReplicaSets, the same pods, and released by b.
        pods = pod_uids(sandbox, namespace, "web")
        sandbox.kubectl_run("label", "rollout", "web", "-n", namespace, f"{shard.LABEL}=b", "--overwrite")
        eventually(lambda: status(sandbox, "web", namespace).get(shard.RECORDED) == "b", timeout=30)
        moved = replicasets(sandbox, namespace, "web")
        assert {name: rs["metadata"]["uid"] for name, rs in moved.items()} == {
            name: rs["metadata"]["uid"] for name, rs in upgraded.items()
        }
        assert {shard.of(rs) for rs in moved.values()} == {"b"}
        assert pod_uids(sandbox, namespace, "web") == pods  # no pod restarted
        assert eventually(lambda: cached(ports["a"], "ReplicaSet") == 0, timeout=10)
        assert cached(ports["b"], "ReplicaSet") == 2
        in_shard(body, "b")
        released(sandbox, body, "web:3")
        assert {shard.of(rs) for rs in replicasets(sandbox, namespace, "web").values()} == {"b"}
    finally:
        for running in shards.values():
            running.stop()


def test_a_components_objects_follow_it_to_another_shard(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    shards, ports = two_shards(sandbox, namespace, tmp_path)
    body = component("svc", namespace)
    body["apiVersion"] = "component.luojilab.com/v1beta1"  # these controllers serve no webhook
    in_shard(body, "a")
    kinds = ("deployment", "service", "ingress")
    try:
        for running in shards.values():
            running.start()
        apply(sandbox, body)
        wait_condition(sandbox, "svc", namespace, "Ready")
        rendered = {kind: get(sandbox, kind, "svc", namespace) for kind in kinds}
        assert {kind: shard.of(obj) for kind, obj in rendered.items()} == dict.fromkeys(kinds, "a")
        template = rendered["deployment"]["spec"]["template"]["metadata"]["labels"]
        assert shard.LABEL not in template
        assert get(sandbox, "component", "svc", namespace)["status"][shard.RECORDED] == "a"
        assert eventually(lambda: cached(ports["a"], "Deployment") == 1, timeout=10)
        assert cached(ports["b"], "Deployment") == 0

        running_pods = pods(sandbox, namespace, "app=svc")
        sandbox.kubectl_run("label", "component", "svc", "-n", namespace, f"{shard.LABEL}=b", "--overwrite")
        eventually(
            lambda: get(sandbox, "component", "svc", namespace)["status"].get(shard.RECORDED) == "b",
            timeout=30,
        )
        moved = {kind: get(sandbox, kind, "svc", namespace) for kind in kinds}
        assert {kind: shard.of(obj) for kind, obj in moved.items()} == dict.fromkeys(kinds, "b")
        assert {k: o["metadata"]["uid"] for k, o in moved.items()} == {
            k: o["metadata"]["uid"] for k, o in rendered.items()
        }
        # The pods' template is the same (the Deployment's generation moves: its annotations do).
        assert moved["deployment"]["spec"]["template"] == rendered["deployment"]["spec"]["template"]
        assert pods(sandbox, namespace, "app=svc") == running_pods  # no pod restarted
        wait_condition(sandbox, "svc", namespace, "Ready")
        assert eventually(lambda: cached(ports["a"], "Deployment") == 0, timeout=10)
        assert cached(ports["b"], "Deployment") == 1
    finally:
        for running in shards.values():
            running.stop()
