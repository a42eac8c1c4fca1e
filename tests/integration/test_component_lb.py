"""luoji-slb on the sandbox: the controller creates, binds and releases a load balancer through the
LB service's REST contract (served for real on loopback, failing on purpose), and moves a Service
converted from v1alpha1 `aliyun-slb` onto it without the application noticing.

These tests run their own controller (labelled Components only, `--controller-id`), pointed at
their LB server; the session's controller serves the conversion webhook.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from delivery.component.slb import ADDRESS_ANNOTATION, FINALIZER, ID_ANNOTATION
from delivery.operator import CONTROLLER_ID_LABEL
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.fakes.lb_server import LoadBalancerServer
from tests.rollouts import apply, get
from tests.waiting import eventually

SHARD = "lb-tests"
ALIYUN_ID = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-id"
ALIYUN_SPEC = "service.beta.kubernetes.io/alicloud-loadbalancer-spec"
WAIT = 120  # seconds: generous, several test sessions share the machine's two cores


@pytest.fixture(scope="module")
def lb() -> Iterator[LoadBalancerServer]:
    with LoadBalancerServer() as server:
        yield server


@pytest.fixture(scope="module")
def lb_controller(
    controller: Controller, lb: LoadBalancerServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    own = Controller(
        controller.sandbox,
        tmp_path_factory.mktemp("lb-controller") / "delivery.log",
        args=(f"--controller-id={SHARD}", "--webhook=off", f"--lb-endpoint={lb.url}"),
    )
    own.start()
    yield own
    own.stop()


def component(name: str, namespace: str, version: str, service: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"component.luojilab.com/{version}",
        "kind": "Component",
        "metadata": {"name": name, "namespace": namespace, "labels": {CONTROLLER_ID_LABEL: SHARD}},
        "spec": {
            "workloadType": "Deployment",
            "developLanguage": "python",
            "runType": "server",
            "image": "python-demo:1",
            "port": 8080,
            "replicas": 2,
            "svc": service,
        },
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


def bound(sandbox: Sandbox, name: str, namespace: str) -> dict[str, Any] | None:
    found = get(sandbox, "components.v1beta1.component.luojilab.com", name, namespace)
    if condition(found, "LoadBalancerReady").get("status") != "True":
        return None
    return found


def listed(sandbox: Sandbox, *args: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(sandbox.kubectl_run("get", *args, "-o", "json"))["items"]
    return items


def node_addresses(sandbox: Sandbox) -> list[str]:
    return sorted(
        next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        for node in listed(sandbox, "nodes")
        if not node["spec"].get("unschedulable")
    )


def events(sandbox: Sandbox, namespace: str, name: str) -> set[str]:
    found = listed(sandbox, "events", "-n", namespace, f"--field-selector=involvedObject.name={name}")
    return {event["reason"] for event in found}


def ready_pods(sandbox: Sandbox, namespace: str) -> set[str]:
    return {
        pod["metadata"]["uid"]
        for pod in listed(sandbox, "pods", "-n", namespace)
        if any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
    }


def test_create_bind_and_release_through_a_failing_lb_service(
    sandbox: Sandbox, namespace: str, lb: LoadBalancerServer, lb_controller: Controller
) -> None:
    # The first create is made but its answer lost, the next two get 503: one load balancer all the same.
    lb.misbehave(drop_next=1, fail_next=2, status=503, methods=frozenset({"POST"}))
    ports = [{"name": "http", "port": 80, "targetPort": 8080}]
    apply(sandbox, component("shop", namespace, "v1beta1", {"type": "luoji-slb", "ports": ports}))

    found = eventually(lambda: bound(sandbox, "shop", namespace), timeout=WAIT, what="the LB bound")
    assert FINALIZER in found["metadata"]["finalizers"]
    mine = [b for b in lb.balancers() if b["labels"].get("namespace") == namespace]
    assert len(mine) == 1, lb.seen()
    balancer = mine[0]
    assert found["status"]["loadBalancer"] == {"id": balancer["id"], "address": balancer["address"]}
    posts = [seen for seen in lb.seen() if seen.method == "POST" and seen.token == balancer["clientToken"]]
    assert [seen.status for seen in posts][:4] == [0, 503, 503, 200]

    service = get(sandbox, "service", "shop", namespace)
    assert service["spec"]["type"] == "NodePort"
    assert service["metadata"]["annotations"][ID_ANNOTATION] == balancer["id"]
    assert service["metadata"]["annotations"][ADDRESS_ANNOTATION] == balancer["address"]
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert balancer["listeners"] == [{"port": 80, "protocol": "TCP", "backendPort": node_port}]
    assert sorted(b["address"] for b in balancer["backends"]) == node_addresses(sandbox)
    assert {"LoadBalancerCreated", "LoadBalancerBound", "ServiceSwitched"} <= events(
        sandbox, namespace, "shop"
    )

    # Deleting waits for the load balancer to be released, through two more failures.
    lb.misbehave(fail_next=2, status=500, methods=frozenset({"DELETE"}))
    sandbox.kubectl_run(
        "delete", "components.component.luojilab.com", "shop", "-n", namespace, "--wait=false"
    )
    eventually(
        lambda: not listed(sandbox, "components.component.luojilab.com", "-n", namespace),
        timeout=WAIT,
        what="the Component gone",
    )
    assert balancer["id"] not in {b["id"] for b in lb.balancers()}
    deletes = [seen.status for seen in lb.seen() if seen.method == "DELETE" and balancer["id"] in seen.path]
    assert deletes[:3] == [500, 500, 204]


def legacy_objects(namespace: str) -> list[dict[str, Any]]:
    """What an old aliyun-slb service looks like before the controller: a Deployment and a
    LoadBalancer Service annotated for Alibaba Cloud's SLB."""
    labels = {"app": "legacy"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "legacy", "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": "legacy", "image": "python-demo:1", "ports": [{"containerPort": 8080}]}
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "legacy",
                "namespace": namespace,
                "annotations": {ALIYUN_ID: "lb-aliyun-1", ALIYUN_SPEC: "slb.s1.small"},
            },
            "spec": {
                "type": "LoadBalancer",
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            },
        },
    ]


def test_an_aliyun_slb_component_moves_to_luoji_slb_unnoticed(
    sandbox: Sandbox, namespace: str, lb: LoadBalancerServer, lb_controller: Controller
) -> None:
    lb.misbehave()
    apply(sandbox, *legacy_objects(namespace))
    pods = eventually(
        lambda: len(ready_pods(sandbox, namespace)) == 2 and ready_pods(sandbox, namespace),
        timeout=WAIT,
        what="the legacy pods ready",
    )
    before = get(sandbox, "service", "legacy", namespace)

    old = component("legacy", namespace, "v1alpha1", {"type": "aliyun-slb", "slbSpec": "slb.s1.small"})
    old["spec"]["svc"]["ports"] = [{"name": "http", "port": 80, "targetPort": 8080}]
    apply(sandbox, old)

    found = eventually(lambda: bound(sandbox, "legacy", namespace), timeout=WAIT, what="the new LB bound")
    after = get(sandbox, "service", "legacy", namespace)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    for field in ("clusterIP", "selector", "ports"):
        assert after["spec"][field] == before["spec"][field], field
    annotations = after["metadata"]["annotations"]
    assert ALIYUN_ID not in annotations
    assert ALIYUN_SPEC not in annotations
    balancer = next(b for b in lb.balancers() if b["id"] == annotations[ID_ANNOTATION])
    assert found["status"]["loadBalancer"]["id"] == balancer["id"]
    node_port = before["spec"]["ports"][0]["nodePort"]
    assert balancer["listeners"] == [{"port": 80, "protocol": "TCP", "backendPort": node_port}]

    # The application noticed nothing: the same pods, still ready.
    assert ready_pods(sandbox, namespace) == pods
    # Old clients still read what they wrote.
    as_old = get(sandbox, "components.v1alpha1.component.luojilab.com", "legacy", namespace)
    assert as_old["spec"]["svc"] == {
        "type": "aliyun-slb",
        "slbSpec": "slb.s1.small",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
    }
