"""The real HPA (the controller-manager's, on metrics-server's figures of kwok's simulated usage)
scales a Rollout in the middle of a release: the split follows its total, the pause stays, and the
release completes at the HPA's count. And the HPA measures what carries production traffic only: a
blue-green preview's pods do not make it scale."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from delivery.rollout.revision import HASH_LABEL, template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.integration.test_rollout_scale import counts
from tests.rollouts import PROMOTE, apply, get, rollout, service, status, wait_for
from tests.usage import held_usage
from tests.waiting import eventually

# metrics-server takes two scrapes (10 s apart) for a rate, the HPA one sync (5 s) to act on it;
# each scale-up step at most doubles: the margin is for a loaded 2-core machine.
HPA_TIMEOUT = 120
REQUEST = {"cpu": "100m", "memory": "64Mi"}


def autoscaled(namespace: str, image: str, strategy: dict[str, Any], replicas: int) -> dict[str, Any]:
    """A Rollout `web` whose pods request 100m (utilisation is a share of the request)."""
    body = rollout("web", namespace, image, strategy, replicas=replicas)
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": REQUEST}
    return body


def hpa(namespace: str, least: int, most: int) -> dict[str, Any]:
    """CPU at 50% of the request: 50m a pod."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "delivery.luojilab.com/v1alpha1",
                "kind": "Rollout",
                "name": "web",
            },
            "minReplicas": least,
            "maxReplicas": most,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
    }


def measured(sandbox: Sandbox, namespace: str) -> dict[str, Any] | None:
    """The HPA's status once it has measured the CPU: current and desired replicas, utilisation."""
    current = get(sandbox, "hpa", "web", namespace).get("status") or {}
    for metric in current.get("currentMetrics") or []:
        utilisation = (metric.get("resource") or {}).get("current", {}).get("averageUtilization")
        if utilisation is not None:
            return {**current, "utilisation": utilisation}
    return None


def spec_replicas(sandbox: Sandbox, namespace: str) -> int:
    replicas: int = get(sandbox, "rollout", "web", namespace)["spec"]["replicas"]
    return replicas


def test_the_hpa_scales_a_canary_paused_at_half_and_the_release_completes_at_its_count(
    sandbox: Sandbox, api: client.ApiClient, namespace: str, controller: Controller
) -> None:
    strategy = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": 0}}
    with held_usage(api, namespace, "app=web", cpu="25m") as usage:  # 50% of the target: at its minimum
        apply(sandbox, autoscaled(namespace, "web:1", strategy, replicas=2), hpa(namespace, 2, 6))
        stable = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
        second = autoscaled(namespace, "web:2", strategy, replicas=2)
        apply(sandbox, second)
        canary = template_hash(second["spec"]["template"])
        paused = wait_for(sandbox, "web", namespace, timeout=90, phase="Paused", currentStepIndex=1)
        counts(sandbox, namespace, {stable: 1, canary: 1})
        eventually(lambda: measured(sandbox, namespace), timeout=HPA_TIMEOUT, what="the HPA measuring CPU")
        assert spec_replicas(sandbox, namespace) == 2

        usage.set(cpu="150m")  # 300% of the target on every pod: up to the maximum
        eventually(
            lambda: spec_replicas(sandbox, namespace) == 6, timeout=HPA_TIMEOUT, what="the HPA at its maximum"
        )
        counts(sandbox, namespace, {stable: 3, canary: 3})  # pods are the weight: half of the HPA's six
        grown = status(sandbox, "web", namespace)
        assert (grown["state"], grown["currentStepIndex"]) == ("paused", 1)
        assert grown["pauseStartTime"] == paused["pauseStartTime"]
        assert grown["weights"] == {"canary": 50, "stable": 50}
        assert (grown["selector"], grown["hpaReplicas"]) == ("app=web", 6)

        sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
        wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy", stableRevision=canary)
        counts(sandbox, namespace, {canary: 6})
        assert spec_replicas(sandbox, namespace) == 6


def test_the_hpa_does_not_count_a_blue_green_preview(
    sandbox: Sandbox, api: client.ApiClient, namespace: str, controller: Controller
) -> None:
    """Every pod at 40m, 40% of its request: 0.8 of the target. Measured on the active revision's
    three, the HPA wants ceil(0.8 x 3) = 3, its minimum; counted with the preview's three it would
    want ceil(0.8 x 6) = 5."""
    strategy = {
        "blueGreen": {
            "activeService": "web",
            "previewService": "web-preview",
            "autoPromotionEnabled": False,
            "scaleDownDelaySeconds": 0,
        }
    }
    with held_usage(api, namespace, "app=web", cpu="40m"):
        apply(
            sandbox,
            service("web", namespace, "web"),
            service("web-preview", namespace, "web"),
            autoscaled(namespace, "web:1", strategy, replicas=3),
            hpa(namespace, 3, 8),
        )
        blue = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
        second = autoscaled(namespace, "web:2", strategy, replicas=3)
        apply(sandbox, second)
        green = template_hash(second["spec"]["template"])
        wait_for(sandbox, "web", namespace, timeout=90, phase="Paused", canaryRevision=green)
        counts(sandbox, namespace, {blue: 3, green: 3})

        def at_forty() -> dict[str, Any] | None:
            current = measured(sandbox, namespace)
            return current if current is not None and 36 <= current["utilisation"] <= 44 else None

        eventually(at_forty, timeout=HPA_TIMEOUT, what="the HPA measuring 40% (kwok's rate, within 10%)")
        deadline = time.monotonic() + 30  # six HPA syncs: any of them would have scaled up
        while time.monotonic() < deadline:
            current = measured(sandbox, namespace)
            assert current is not None
            assert (current["currentReplicas"], current["desiredReplicas"]) == (3, 3)
            assert spec_replicas(sandbox, namespace) == 3
            time.sleep(2)
        assert status(sandbox, "web", namespace)["selector"] == f"app=web,{HASH_LABEL}={blue}"

        sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=full")
        wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy", stableRevision=green)
        counts(sandbox, namespace, {green: 3})
