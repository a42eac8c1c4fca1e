"""Components and scaling on the sandbox, through the real `delivery run` process: a fixed-size
Component scaled by hand is put back once, quietly; an autoscaled one is left to its
HorizontalPodAutoscaler (the real kube-controller-manager's), driven first through the scale
subresource as the autoscaler writes it, then by the autoscaler itself on the pods' simulated CPU
(kwok's usage, served by metrics-server: `tests/usage.py`); turning autoscaling on hands the
replicas over without a drop, and turning it off takes them back.

Where a test drives the scale subresource itself, the pods are held at the autoscaler's CPU target
(its ratio 1: within its tolerance it keeps any count), so what moves the replicas is the test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from kubernetes import client, watch

from delivery.component.autoscaling import HANDOVER_MANAGER
from delivery.controllers.component import FIELD_MANAGER
from sandbox.cluster import Sandbox
from sandbox.processes import ComponentFailed
from tests.components import component, conditions, wait_condition
from tests.controller import Controller
from tests.rollouts import apply, event_objects, get
from tests.usage import held_usage, pod_usage
from tests.waiting import eventually

GROUP, VERSION = "component.luojilab.com", "v1beta1"
SETTLE_SECONDS = 10.0
"""How long the controller is watched leaving a scale alone (it reacts within a second)."""
METRICS_TIMEOUT = 150.0
"""A usage change reaches the autoscaler in 10-20 s, then a sync (5 s) and a scale; on a loaded
2-core machine, each step of tests/integration/test_sandbox_metrics.py has taken up to 77 s."""


@dataclass
class Seen:
    """What a watch showed, in order: the Component's Ready statuses, the workload's replicas."""

    ready: list[str] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)


@contextmanager
def following(api: client.ApiClient, namespace: str, name: str) -> Iterator[Seen]:
    """Watch the Component and its Deployment while the block runs: every version of each."""
    seen, stopping = Seen(), threading.Event()
    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    selector = f"metadata.name={name}"

    def follow_component() -> None:
        while not stopping.is_set():
            for event in watch.Watch().stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                "components",
                field_selector=selector,
                timeout_seconds=2,
            ):
                found = (event["object"].get("status") or {}).get("conditions") or []
                seen.ready += [c["status"] for c in found if c["type"] == "Ready"]

    def follow_deployment() -> None:
        while not stopping.is_set():
            for event in watch.Watch().stream(
                apps.list_namespaced_deployment, namespace, field_selector=selector, timeout_seconds=2
            ):
                seen.replicas.append(event["object"].spec.replicas)

    threads = [
        threading.Thread(target=target, daemon=True) for target in (follow_component, follow_deployment)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1)  # both watches listing
    try:
        yield seen
    finally:
        stopping.set()
        for thread in threads:
            thread.join(timeout=5)


def scale(sandbox: Sandbox, namespace: str, name: str, replicas: int) -> None:
    """Through the scale subresource, as `kubectl scale` and the autoscaler write it."""
    sandbox.kubectl_run("scale", "deployment", name, "-n", namespace, f"--replicas={replicas}")


def replicas_owners(sandbox: Sandbox, namespace: str, name: str) -> set[str]:
    """The field managers that own the Deployment's spec.replicas."""
    deployment = json.loads(
        sandbox.kubectl_run("get", "deployment", name, "-n", namespace, "-o", "json", "--show-managed-fields")
    )
    return {
        entry["manager"]
        for entry in deployment["metadata"].get("managedFields") or []
        if "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    }


def event_names(sandbox: Sandbox, name: str, namespace: str) -> set[str]:
    return {event["metadata"]["name"] for event in event_objects(sandbox, name, namespace, "Component")}


def events_since(sandbox: Sandbox, name: str, namespace: str, before: set[str]) -> list[tuple[str, str]]:
    """The Component's Events not in `before`: (reason, message)."""
    return [
        (event["reason"], event["message"])
        for event in event_objects(sandbox, name, namespace, "Component")
        if event["metadata"]["name"] not in before
    ]


def at_target(api: client.ApiClient, namespace: str, app: str, pods: int) -> None:
    """Wait until metrics-server serves the held 60m for all `pods` of `app`: until then the
    autoscaler would read their former 1m and scale in."""
    eventually(
        lambda: (
            len(usage := pod_usage(api, namespace, f"app={app}")) == pods
            and all(abs(pod.cpu - Decimal("0.06")) <= Decimal("0.006") for pod in usage.values())
        ),
        timeout=METRICS_TIMEOUT,
        what=f"{pods} pods at 60m in metrics.k8s.io",
    )


def left_alone(sandbox: Sandbox, namespace: str, name: str, replicas: int) -> None:
    """For SETTLE_SECONDS the Deployment keeps `replicas` and its spec's generation."""
    generation = get(sandbox, "deployment", name, namespace)["metadata"]["generation"]
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        deployment = get(sandbox, "deployment", name, namespace)
        assert (deployment["spec"]["replicas"], deployment["metadata"]["generation"]) == (
            replicas,
            generation,
        )
        time.sleep(0.5)


def test_a_scaled_deployment_is_restored_once_with_one_event_and_ready_kept(
    sandbox: Sandbox, api: client.ApiClient, namespace: str, controller: Controller
) -> None:
    """`kubectl scale` on a fixed-size Component's Deployment: spec.replicas is the authority, so
    the Deployment goes back to 1, told by one ReplicasRestored Event; Ready stays True."""
    apply(sandbox, component("web", namespace))
    wait_condition(sandbox, "web", namespace, "Ready")
    before = event_names(sandbox, "web", namespace)
    with following(api, namespace, "web") as seen:
        scale(sandbox, namespace, "web", 3)
        eventually(lambda: 3 in seen.replicas and seen.replicas[-1] == 1, timeout=30, what="replicas back")
        left_alone(sandbox, namespace, "web", 1)
    assert seen.ready, "the watch saw the Component"
    assert set(seen.ready) == {"True"}, seen.ready
    new = events_since(sandbox, "web", namespace, before)
    assert [reason for reason, _ in new] == ["ReplicasRestored"], new
    assert new[0][1].startswith("Restored Deployment web to 1 replicas (spec.replicas), scaled to 3")
    assert replicas_owners(sandbox, namespace, "web") == {FIELD_MANAGER}


def test_an_autoscaled_deployment_is_left_to_its_autoscaler(
    sandbox: Sandbox, api: client.ApiClient, namespace: str, controller: Controller
) -> None:
    """v1alpha1, as the five lines are written: the HPA targets the Deployment, the controller
    never writes its replicas; the real HPA holds them within maxReplicas."""
    autoscaled = component(
        "api", namespace, autoscaling={"minReplicas": 2, "maxReplicas": 4, "cpuUtilization": 60}
    )
    apply(sandbox, autoscaled)
    wait_condition(sandbox, "api", namespace, "Ready", timeout=120)
    hpa = get(sandbox, "hpa", "api", namespace)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        }
    ]
    assert [(owner["kind"], owner["name"]) for owner in hpa["metadata"]["ownerReferences"]] == [
        ("Component", "api")
    ]
    # The autoscaler raised the defaulted 1 to its minimum; the controller wrote no replicas.
    eventually(lambda: get(sandbox, "deployment", "api", namespace)["spec"]["replicas"] == 2, timeout=60)
    assert FIELD_MANAGER not in replicas_owners(sandbox, namespace, "api")
    status = eventually(
        lambda: (
            (s := get(sandbox, "component", "api", namespace)["status"].get("autoscaling"))
            and "scalingActive" in s
            and s
        ),
        timeout=60,
        what="the autoscaler's ScalingActive in status",
    )
    assert {key: status[key] for key in ("horizontalPodAutoscaler", "minReplicas", "maxReplicas")} == {
        "horizontalPodAutoscaler": "api",
        "minReplicas": 2,
        "maxReplicas": 4,
    }
    wait_condition(sandbox, "api", namespace, "Ready", timeout=120)
    before = event_names(sandbox, "api", namespace)
    with held_usage(api, namespace, "app=api", cpu="60m"), following(api, namespace, "api") as seen:
        at_target(api, namespace, "api", 2)
        scale(sandbox, namespace, "api", 3)  # within the range, at the target: the autoscaler keeps it
        left_alone(sandbox, namespace, "api", 3)
        scale(sandbox, namespace, "api", 9)  # above maxReplicas: the real autoscaler brings it to 4
        eventually(
            lambda: seen.replicas and seen.replicas[-1] == 4, timeout=60, what="the HPA at maxReplicas"
        )
        left_alone(sandbox, namespace, "api", 4)
    assert 9 in seen.replicas
    assert "False" not in seen.ready, seen.ready
    assert events_since(sandbox, "api", namespace, before) == []
    assert conditions(sandbox, "api", namespace)["Ready"]["status"] == "True"


def test_autoscaling_turned_on_keeps_the_replicas_and_turned_off_takes_them_back(
    sandbox: Sandbox, api: client.ApiClient, namespace: str, controller: Controller
) -> None:
    apply(sandbox, component("shop", namespace, replicas=3))
    wait_condition(sandbox, "shop", namespace, "Ready", timeout=120)
    with held_usage(api, namespace, "app=shop", cpu="60m"):
        at_target(api, namespace, "shop", 3)
        with following(api, namespace, "shop") as seen:
            autoscaling = {"minReplicas": 2, "maxReplicas": 5, "cpuUtilization": 60}
            apply(sandbox, component("shop", namespace, autoscaling=autoscaling))
            eventually(lambda: get(sandbox, "hpa", "shop", namespace), timeout=60, what="the HPA")
            wait_condition(sandbox, "shop", namespace, "Reconciled")
            left_alone(sandbox, namespace, "shop", 3)
        assert set(seen.replicas) == {3}, seen.replicas  # handed over, never dropped to the default 1
        owners = replicas_owners(sandbox, namespace, "shop")
        assert FIELD_MANAGER not in owners, owners
        assert HANDOVER_MANAGER in owners, owners
        scale(sandbox, namespace, "shop", 5)
        left_alone(sandbox, namespace, "shop", 5)
    apply(sandbox, component("shop", namespace, replicas=2))
    eventually(lambda: get(sandbox, "deployment", "shop", namespace)["spec"]["replicas"] == 2, timeout=60)
    eventually(
        lambda: not sandbox.kubectl_run("get", "hpa", "-n", namespace, "-o", "name").strip(),
        timeout=60,
        what="the HPA pruned",
    )
    wait_condition(sandbox, "shop", namespace, "Ready", timeout=120)
    assert "autoscaling" not in get(sandbox, "component", "shop", namespace)["status"]
    assert replicas_owners(sandbox, namespace, "shop") == {FIELD_MANAGER}


@pytest.mark.matrix
def test_the_real_autoscaler_scales_a_component_on_cpu_and_the_controller_leaves_it(
    sandbox: Sandbox, api: client.ApiClient, namespace: str, controller: Controller
) -> None:
    """The pods' CPU raised to 150% of their 100m request against a 50% target: the HPA scales out
    to maxReplicas; lowered to 10m, back in to minReplicas. Ready stays True, the controller writes
    no replicas and tells of nothing, and the status says the autoscaler reads its metric."""
    block = {"minReplicas": 1, "maxReplicas": 4, "cpuUtilization": 50}
    apply(sandbox, component("load", namespace, autoscaling=block))
    wait_condition(sandbox, "load", namespace, "Ready", timeout=120)
    active = eventually(
        lambda: (get(sandbox, "component", "load", namespace)["status"].get("autoscaling") or {}).get(
            "scalingActive"
        ),
        timeout=METRICS_TIMEOUT,
        what="the autoscaler reading the pods' CPU",
    )
    assert active is True
    assert get(sandbox, "component", "load", namespace)["status"]["autoscaling"]["message"].startswith(
        "ValidMetricFound: "
    )
    before = event_names(sandbox, "load", namespace)

    def replicas() -> int:
        return int(get(sandbox, "deployment", "load", namespace)["spec"]["replicas"])

    with (
        following(api, namespace, "load") as seen,
        held_usage(api, namespace, "app=load", cpu="150m") as usage,
    ):
        eventually(lambda: replicas() == 4, timeout=METRICS_TIMEOUT, what="scaled out to maxReplicas")
        wait_condition(sandbox, "load", namespace, "Ready", timeout=120)
        usage.set(cpu="10m")
        eventually(lambda: replicas() == 1, timeout=METRICS_TIMEOUT, what="scaled in to minReplicas")
        left_alone(sandbox, namespace, "load", 1)
    assert {1, 4} <= set(seen.replicas), seen.replicas
    assert "False" not in seen.ready, seen.ready
    assert events_since(sandbox, "load", namespace, before) == []
    assert FIELD_MANAGER not in replicas_owners(sandbox, namespace, "load")
    assert conditions(sandbox, "load", namespace)["Ready"]["status"] == "True"


def test_a_daemonset_cannot_be_autoscaled(sandbox: Sandbox, namespace: str, controller: Controller) -> None:
    manifest = component(
        "agent",
        namespace,
        workloadType="DaemonSet",
        runType="worker",
        autoscaling={"maxReplicas": 3, "cpuUtilization": 50},
    )
    del manifest["spec"]["port"]
    with pytest.raises(
        ComponentFailed, match="a DaemonSet runs one pod per node and has no replicas to scale"
    ):
        apply(sandbox, manifest)
