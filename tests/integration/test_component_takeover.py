"""Writes counted, old services taken over, and the opt-out: the Component controller against the
sandbox. Counting needs the controller in this process (its Kube counts requests by verb), so those
Components carry a controller id that the session's `delivery run` does not handle; the others
go through `delivery run` itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes.aio import config as aio_config

from delivery.component.render import NAME_LABEL
from delivery.controllers.component import ComponentController
from delivery.kube import discovery
from delivery.kube.api import Kube
from delivery.kube.kinds import COMPONENT, DEPLOYMENT, SERVICE
from sandbox.cluster import Sandbox
from tests.components import component, conditions, events, pods, wait_condition
from tests.controller import Controller
from tests.rollouts import apply, get
from tests.waiting import eventually

IN_TEST = {"delivery.luojilab.com/controller-id": "in-test"}


@pytest.fixture
async def kube(sandbox: Sandbox) -> AsyncIterator[Kube]:
    client = await aio_config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    yield Kube(client)
    await client.close()


async def observed(kube: Kube, namespace: str, name: str) -> ComponentController:
    """A controller whose caches hold what its watches would show now (as after a restart)."""
    controller = ComponentController(Kube(kube.client), 1)  # its own count of requests
    found = await kube.get(COMPONENT, namespace, name)
    assert found is not None
    controller.cache.observe("ADDED", found)
    for kind in (DEPLOYMENT, SERVICE, discovery.INGRESS.at("networking.k8s.io/v1")):
        for obj in await kube.list(kind, namespace, f"{NAME_LABEL}={name}"):
            listed = {**obj, "apiVersion": kind.api_version, "kind": kind.kind}  # a list's items lack them
            controller.owned.observe("ADDED", (namespace, name), listed)
    return controller


def deployment_available(sandbox: Sandbox, name: str, namespace: str, replicas: int) -> bool:
    status = get(sandbox, "deployment", name, namespace).get("status") or {}
    return status.get("availableReplicas") == replicas and status.get("updatedReplicas") == replicas


async def test_a_second_reconcile_makes_no_write(
    sandbox: Sandbox, namespace: str, controller: Controller, kube: Kube
) -> None:
    quiet = component("quiet", namespace)
    quiet["metadata"]["labels"] = IN_TEST
    apply(sandbox, quiet)
    reconciler = await observed(kube, namespace, "quiet")
    key = (namespace, "quiet")
    await reconciler.reconcile(key)
    counted = reconciler.kube.requests
    # three applies (Deployment, Service, Ingress), their three Events, one status patch
    assert (counted["PATCH"], counted["POST"], counted["DELETE"]) == (4, 3, 0)
    writes = reconciler.kube.writes
    await reconciler.reconcile(key)
    assert reconciler.kube.writes == writes

    eventually(lambda: deployment_available(sandbox, "quiet", namespace, 1), timeout=60, what="pods ready")
    settled = await observed(kube, namespace, "quiet")
    await settled.reconcile(key)
    assert settled.kube.writes == 2  # the status (Ready is True now) and its Event
    assert conditions(sandbox, "quiet", namespace)["Ready"]["status"] == "True"

    restarted = await observed(kube, namespace, "quiet")
    await restarted.reconcile(key)
    assert restarted.kube.writes == 0
    asked = sum(restarted.kube.requests.values())  # the profile, templates and Ingress versions, once
    await restarted.reconcile(key)
    assert sum(restarted.kube.requests.values()) == asked  # the rest comes from the caches


def legacy(namespace: str) -> list[dict[str, Any]]:
    """A service deployed before the controller: its own labels, a Service on port 80."""
    labels = {"run": "legacy"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "legacy", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": "legacy:7", "ports": [{"containerPort": 8080}]}
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "legacy", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


def test_an_existing_deployment_and_service_are_adopted_without_restarting_a_pod(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, *legacy(namespace))
    eventually(
        lambda: deployment_available(sandbox, "legacy", namespace, 2), timeout=60, what="legacy running"
    )
    before = pods(sandbox, namespace, "run=legacy")
    template = get(sandbox, "deployment", "legacy", namespace)["spec"]["template"]
    service_spec = get(sandbox, "service", "legacy", namespace)["spec"]

    apply(sandbox, component("legacy", namespace))
    wait_condition(sandbox, "legacy", namespace, "Ready")
    deployment = get(sandbox, "deployment", "legacy", namespace)
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Component", "legacy")
    assert deployment["metadata"]["labels"][NAME_LABEL] == "legacy"
    assert deployment["spec"]["template"] == template  # the pod template hash cannot have changed
    assert pods(sandbox, namespace, "run=legacy") == before  # the same pods, by UID
    service = get(sandbox, "service", "legacy", namespace)
    assert service["spec"]["ports"] == service_spec["ports"]  # clients keep port 80
    assert service["spec"]["selector"] == {"run": "legacy"}
    assert service["metadata"]["ownerReferences"][0]["name"] == "legacy"
    assert {"Adopted Deployment legacy", "Adopted Service legacy", "Created Ingress legacy"} <= {
        message for _reason, message in events(sandbox, "legacy", namespace)
    }

    # The first change of the Component renders in full: a release of the new image, on the old selector.
    apply(sandbox, component("legacy", namespace, image="python-demo:2"))
    wait_condition(sandbox, "legacy", namespace, "Ready")
    released = get(sandbox, "deployment", "legacy", namespace)
    assert released["spec"]["selector"] == {"matchLabels": {"run": "legacy"}}
    (app,) = released["spec"]["template"]["spec"]["containers"]  # the legacy container is gone
    assert (app["name"], app["image"]) == ("app", "python-demo:2")
    service = get(sandbox, "service", "legacy", namespace)
    assert service["spec"]["selector"] == {"run": "legacy"}
    assert [(port["name"], port["port"]) for port in service["spec"]["ports"]] == [("http", 8080)]
    assert "component.luojilab.com/adopted-generation" not in released["metadata"]["annotations"]


async def test_an_unmanaged_component_is_left_alone_until_the_annotation_goes(
    sandbox: Sandbox, namespace: str, controller: Controller, kube: Kube
) -> None:
    apply(sandbox, component("keep", namespace))
    wait_condition(sandbox, "keep", namespace, "Ready")
    sandbox.kubectl_run(
        "annotate", "component", "keep", "-n", namespace, "component.luojilab.com/unmanaged=true"
    )
    untouched = get(sandbox, "component", "keep", namespace)["metadata"]["resourceVersion"]
    sandbox.kubectl_run("scale", "deployment", "keep", "-n", namespace, "--replicas=3")
    patch = {"spec": {"ports": [{"name": "http", "port": 9090, "targetPort": 8080, "protocol": "TCP"}]}}
    sandbox.kubectl_run("patch", "service", "keep", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    # Three pods available means every Deployment event of the scale-up reached `delivery run`.
    eventually(lambda: deployment_available(sandbox, "keep", namespace, 3), timeout=60, what="scaled by hand")
    assert get(sandbox, "component", "keep", namespace)["metadata"]["resourceVersion"] == untouched
    assert get(sandbox, "service", "keep", namespace)["spec"]["ports"][0]["port"] == 9090

    counting = await observed(kube, namespace, "keep")
    await counting.reconcile((namespace, "keep"))
    assert counting.kube.writes == 0

    sandbox.kubectl_run("annotate", "component", "keep", "-n", namespace, "component.luojilab.com/unmanaged-")
    eventually(
        lambda: get(sandbox, "deployment", "keep", namespace)["spec"]["replicas"] == 1,
        timeout=60,
        what="management resumed",
    )
    eventually(
        lambda: (
            [port["port"] for port in get(sandbox, "service", "keep", namespace)["spec"]["ports"]] == [8080]
        ),
        timeout=30,
        what="the renumbered port put back",
    )
