"""The sandbox serves resource metrics for real: kwok's simulated kubelet usage, scraped by
metrics-server, served as `metrics.k8s.io` through the aggregator, and acted on by the
controller-manager's HPA controller. A plain Deployment and HPA, none of ours: the path the
Component and Rollout autoscaling tests build on (`tests/usage.py` sets the usage)."""

from __future__ import annotations

import subprocess
from decimal import Decimal

from kubernetes import client

from sandbox.cluster import Sandbox
from tests.usage import PodUsage, held_usage, pod_usage, set_usage
from tests.waiting import eventually

# metrics-server needs two scrapes (10 s apart) for a rate, then the HPA one sync (5 s): a change
# shows within about 25 s (a scale-down 10 s more); the margin is for a loaded 2-core machine.
METRICS_TIMEOUT = 90


def _deployment(apps: client.AppsV1Api, namespace: str, name: str, replicas: int) -> None:
    labels = {"app": name}
    container = client.V1Container(
        name=name,
        image=f"{name}:1",
        resources=client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "64Mi"}),
    )
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1DeploymentSpec(
                replicas=replicas,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels), spec=client.V1PodSpec(containers=[container])
                ),
            ),
        ),
    )
    eventually(
        lambda: apps.read_namespaced_deployment(name, namespace).status.ready_replicas == replicas,
        timeout=60,
        what=f"{replicas} ready replicas",
    )


def test_metrics_api_and_kubectl_top_serve_the_simulated_usage(
    sandbox: Sandbox, api: client.ApiClient, namespace: str
) -> None:
    _deployment(client.AppsV1Api(api), namespace, "web", replicas=2)
    pods = set_usage(api, namespace, "app=web", cpu="300m", memory="200Mi")
    assert len(pods) == 2

    def settled() -> dict[str, PodUsage] | None:
        usage = pod_usage(api, namespace, "app=web")
        if sorted(usage) != pods or any(
            abs(u.cpu - Decimal("0.3")) > Decimal("0.03") for u in usage.values()
        ):
            return None
        return usage

    usage = eventually(settled, timeout=METRICS_TIMEOUT, what="300m for both pods in metrics.k8s.io")
    assert {u.memory for u in usage.values()} == {Decimal(200 * 2**20)}

    top = subprocess.run(
        [
            str(sandbox.kubectl),
            f"--kubeconfig={sandbox.kubeconfig}",
            "top",
            "pods",
            "-n",
            namespace,
            "--no-headers",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = sorted(line.split() for line in top.stdout.splitlines())
    assert [row[0] for row in rows] == pods
    assert all(int(row[1].removesuffix("m")) in range(270, 331) and row[2] == "200Mi" for row in rows), rows


def test_an_hpa_scales_a_deployment_up_and_down_on_simulated_cpu(
    api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api)
    _deployment(apps, namespace, "busy", replicas=1)
    autoscaling = client.AutoscalingV2Api(api)
    autoscaling.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name="busy"),
            spec=client.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name="busy"
                ),
                min_replicas=1,
                max_replicas=4,
                metrics=[
                    client.V2MetricSpec(
                        type="Resource",
                        resource=client.V2ResourceMetricSource(
                            name="cpu",
                            target=client.V2MetricTarget(type="Utilization", average_utilization=50),
                        ),
                    )
                ],
            ),
        ),
    )

    def utilisation() -> int | None:
        status = autoscaling.read_namespaced_horizontal_pod_autoscaler("busy", namespace).status
        for metric in status.current_metrics or []:
            if metric.resource is not None and metric.resource.current.average_utilization is not None:
                return int(metric.resource.current.average_utilization)
        return None

    # At kwok's default 1m of its 100m request the pod is at 1%: the HPA reads it and keeps one.
    assert eventually(lambda: utilisation() is not None, timeout=METRICS_TIMEOUT, what="the HPA reading CPU")
    assert (utilisation() or 0) <= 5
    assert apps.read_namespaced_deployment("busy", namespace).spec.replicas == 1

    def replicas(count: int) -> bool:
        deployment = apps.read_namespaced_deployment("busy", namespace)
        return deployment.spec.replicas == count and deployment.status.ready_replicas == count

    with held_usage(api, namespace, "app=busy", cpu="200m") as usage:
        # 200% of the request against a 50% target: four times the pods, capped at maxReplicas.
        eventually(lambda: replicas(4), timeout=METRICS_TIMEOUT, what="scaled up to 4")
        # the pods the HPA added were given the held usage too, so the average stays high
        eventually(
            lambda: 180 <= (utilisation() or 0) <= 220, timeout=METRICS_TIMEOUT, what="all four pods at 200%"
        )
        assert apps.read_namespaced_deployment("busy", namespace).spec.replicas == 4

        assert len(usage.set(cpu="10m")) == 4
        # 10% against 50%: one pod is enough, once the sandbox's 10 s downscale stabilisation passed.
        eventually(lambda: replicas(1), timeout=METRICS_TIMEOUT, what="scaled down to 1")
    hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler("busy", namespace)
    assert hpa.status.desired_replicas == 1
    conditions = {condition.type: condition.status for condition in hpa.status.conditions}
    assert conditions["ScalingActive"] == "True"
