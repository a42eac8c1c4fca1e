"""The Component controller on the sandbox, through the real `delivery run` process: the five lines
become a running service, an edited Deployment is put back, a release renders a Rollout, and
a broken template changes nothing that runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.cluster import Sandbox
from tests.components import component, conditions, events, pods, wait_condition
from tests.controller import Controller
from tests.rollouts import apply, get
from tests.waiting import eventually


@pytest.mark.matrix
def test_the_five_lines_become_a_deployment_a_service_and_an_ingress_with_ready_pods(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, component("nginx", namespace))
    ready = wait_condition(sandbox, "nginx", namespace, "Ready")
    assert ready["message"] == "1/1 pods available, 1/1 updated"
    deployment = get(sandbox, "deployment", "nginx", namespace)
    assert deployment["status"]["readyReplicas"] == 1
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "python-demo:latest"
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Component", "nginx")
    service = get(sandbox, "service", "nginx", namespace)
    assert service["spec"]["selector"] == {"app": "nginx"}
    assert [port["port"] for port in service["spec"]["ports"]] == [8080]
    ingress = get(sandbox, "ingress", "nginx", namespace)
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "nginx"
    assert len(pods(sandbox, namespace, "app=nginx")) == 1
    status = get(sandbox, "component", "nginx", namespace)["status"]
    assert [(obj["kind"], obj["name"]) for obj in status["objects"]] == [
        ("Deployment", "nginx"),
        ("Service", "nginx"),
        ("Ingress", "nginx"),
    ]
    assert conditions(sandbox, "nginx", namespace)["Reconciled"]["status"] == "True"
    noted = set(events(sandbox, "nginx", namespace))
    assert {("Created", f"Created {kind} nginx") for kind in ("Deployment", "Service", "Ingress")} <= noted
    assert ("Ready", "1/1 pods available, 1/1 updated") in noted


def test_an_edited_deployment_is_put_back(sandbox: Sandbox, namespace: str, controller: Controller) -> None:
    apply(sandbox, component("web", namespace))
    wait_condition(sandbox, "web", namespace, "Ready")
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "hacked:1"}]}}}}
    sandbox.kubectl_run("patch", "deployment", "web", "-n", namespace, "-p", json.dumps(patch))

    def image() -> str:
        deployment = get(sandbox, "deployment", "web", namespace)
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    eventually(lambda: image() == "python-demo:latest", timeout=60, what="the rendered image back")
    assert ("Updated", "Updated Deployment web") in events(sandbox, "web", namespace)


def test_a_release_block_renders_a_rollout_that_releases_the_pods(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    released = component("shop", namespace, replicas=2)
    released["apiVersion"] = "component.luojilab.com/v1beta1"
    released["spec"]["release"] = {"strategy": "canary", "canary": {"steps": [{"setWeight": 50}]}}
    apply(sandbox, released)
    wait_condition(sandbox, "shop", namespace, "Ready", timeout=120)
    rollout = get(sandbox, "rollout", "shop", namespace)
    assert rollout["status"]["phase"] == "Healthy"
    assert rollout["spec"]["strategy"] == {
        "canary": {"steps": [{"setWeight": 50}]}  # no scale-down delays: a basic canary has none
    }
    assert "Deployment" not in {
        obj["kind"] for obj in get(sandbox, "component", "shop", namespace)["status"]["objects"]
    }
    assert len(pods(sandbox, namespace, "app=shop")) == 2


@pytest.fixture
def templates(sandbox: Sandbox) -> Iterator[dict[str, Any]]:
    """The cluster's template ConfigMap, removed after the test (it changes every Component)."""
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "delivery-system"}})
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "component-templates", "namespace": "delivery-system"},
        "data": {},
    }
    yield configmap
    sandbox.kubectl_run(
        "delete", "configmap", "component-templates", "-n", "delivery-system", "--ignore-not-found"
    )


def test_a_broken_template_is_reported_and_changes_nothing_that_runs(
    sandbox: Sandbox, namespace: str, controller: Controller, templates: dict[str, Any]
) -> None:
    apply(sandbox, component("api", namespace))
    wait_condition(sandbox, "api", namespace, "Ready")
    before = get(sandbox, "deployment", "api", namespace)
    templates["data"] = {"pod.yaml.j2": "spec: {{ no_such_value }}\n"}
    apply(sandbox, templates)
    failed = wait_condition(sandbox, "api", namespace, "Reconciled", "False")
    assert failed["reason"] == "RenderFailed"
    assert "pod.yaml.j2 (from ConfigMap delivery-system/component-templates)" in failed["message"]
    assert "'no_such_value' is undefined" in failed["message"]
    apply(sandbox, component("api", namespace, image="python-demo:2"))  # a change cannot be rendered either
    wait_condition(sandbox, "api", namespace, "Reconciled", "False")
    after = get(sandbox, "deployment", "api", namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert conditions(sandbox, "api", namespace)["Ready"]["status"] == "True"  # still running as it was
    assert "RenderFailed" in {reason for reason, _message in events(sandbox, "api", namespace)}

    sandbox.kubectl_run("delete", "configmap", "component-templates", "-n", "delivery-system")
    wait_condition(sandbox, "api", namespace, "Reconciled")
    image = get(sandbox, "deployment", "api", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "python-demo:2"


def test_a_statefulset_is_released_by_lowering_its_partition_step_by_step(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    def stateful(image: str) -> dict[str, Any]:
        manifest = component("db", namespace, workloadType="StatefulSet", replicas=3, image=image)
        manifest["apiVersion"] = "component.luojilab.com/v1beta1"
        manifest["spec"]["release"] = {
            "strategy": "canary",
            "canary": {"steps": [{"setWeight": 34}, {"pause": {}}]},
        }
        return manifest

    def images() -> dict[str, str]:
        listing = json.loads(
            sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", "app=db", "-o", "json")
        )
        return {pod["metadata"]["name"]: pod["spec"]["containers"][0]["image"] for pod in listing["items"]}

    apply(sandbox, stateful("db:1"))
    wait_condition(sandbox, "db", namespace, "Ready", timeout=120)
    assert images() == {"db-0": "db:1", "db-1": "db:1", "db-2": "db:1"}

    apply(sandbox, stateful("db:2"))  # 34% of 3 pods is 2: the two highest ordinals, then a pause
    at_pause = {"db-0": "db:1", "db-1": "db:2", "db-2": "db:2"}
    eventually(lambda: images() == at_pause, timeout=120, what="two pods released")
    statefulset = get(sandbox, "statefulset", "db", namespace)
    assert statefulset["spec"]["updateStrategy"]["rollingUpdate"]["partition"] == 1
    # The step is recorded once the two released pods are ready, which is after their image shows.
    eventually(
        lambda: (
            get(sandbox, "statefulset", "db", namespace)["metadata"]["annotations"].get(
                "component.luojilab.com/release-step"
            )
            == "1"
        ),
        timeout=60,
        what="the release at step 1",
    )

    sandbox.kubectl_run("annotate", "component", "db", "-n", namespace, "component.luojilab.com/promote=1")
    eventually(lambda: set(images().values()) == {"db:2"}, timeout=120, what="every pod released")
    assert (
        get(sandbox, "statefulset", "db", namespace)["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        == 0
    )


def test_adding_a_release_hands_the_pods_from_the_deployment_to_a_rollout(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, component("cart", namespace, replicas=2))
    wait_condition(sandbox, "cart", namespace, "Ready")
    released = component("cart", namespace, replicas=2)
    released["apiVersion"] = "component.luojilab.com/v1beta1"
    released["spec"]["release"] = {"strategy": "blueGreen"}
    apply(sandbox, released)
    wait_condition(sandbox, "cart", namespace, "Ready", timeout=120)

    def deployment_gone() -> bool:
        listing = json.loads(sandbox.kubectl_run("get", "deployments", "-n", namespace, "-o", "json"))
        return not listing["items"]

    eventually(deployment_gone, timeout=60, what="the Deployment pruned once the Rollout is Healthy")
    rollout = get(sandbox, "rollout", "cart", namespace)
    assert rollout["status"]["phase"] == "Healthy"
    assert rollout["spec"]["strategy"]["blueGreen"]["previewService"] == "cart-preview"
    assert get(sandbox, "service", "cart-preview", namespace)["spec"]["type"] == "ClusterIP"
    reasons = [message for _reason, message in events(sandbox, "cart", namespace)]
    assert "Created Rollout cart" in reasons
    assert "Deleted Deployment cart" in reasons
    eventually(lambda: len(pods(sandbox, namespace, "app=cart")) == 2, timeout=60, what="the old pods gone")
