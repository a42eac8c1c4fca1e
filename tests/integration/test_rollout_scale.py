"""`kubectl scale rollout` in the middle of a release, through the scale subresource an HPA writes:
the split follows the new total at the step in force, the pause keeps its start, and the release
then completes at the new total."""

from __future__ import annotations

import json
from typing import Any

from delivery.rollout.revision import HASH_LABEL, template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.integration.test_rollout_traffic import http_route
from tests.rollouts import PROMOTE, apply, get, replicas_by_revision, rollout, service, status, wait_for
from tests.waiting import eventually

STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]


def scale(sandbox: Sandbox, namespace: str, replicas: int) -> None:
    sandbox.kubectl_run("scale", "rollout", "web", "-n", namespace, f"--replicas={replicas}")


def scale_subresource(sandbox: Sandbox, namespace: str) -> dict[str, Any]:
    """The Scale an HPA reads: spec.replicas, status.replicas and status.selector."""
    path = f"/apis/delivery.luojilab.com/v1alpha1/namespaces/{namespace}/rollouts/web/scale"
    scale: dict[str, Any] = json.loads(sandbox.kubectl_run("get", "--raw", path))
    return {"spec": scale["spec"], "status": scale["status"]}


def counts(sandbox: Sandbox, namespace: str, expected: dict[str, int]) -> None:
    """Wait until the ReplicaSets have `expected` replicas (the others none) and all of them ready."""

    def there() -> bool:
        replicas = {rev: n for rev, n in replicas_by_revision(sandbox, "web", namespace).items() if n}
        current = status(sandbox, "web", namespace)
        return replicas == expected and current.get("readyReplicas") == sum(expected.values())

    eventually(there, timeout=90, what=f"ReplicaSets at {expected}")


def paused_canary(
    sandbox: Sandbox, namespace: str, strategy: dict[str, Any], *objects: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """A release paused at setWeight 50 on four replicas: the stable and canary revisions, the status."""
    apply(sandbox, *objects, rollout("web", namespace, "web:1", strategy, replicas=4))
    stable = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    second = rollout("web", namespace, "web:2", strategy, replicas=4)
    apply(sandbox, second)
    paused = wait_for(sandbox, "web", namespace, timeout=90, phase="Paused", currentStepIndex=1)
    return stable, template_hash(second["spec"]["template"]), paused


def test_a_basic_canary_paused_at_half_follows_kubectl_scale_and_completes(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    strategy = {"canary": {"steps": STEPS, "scaleDownDelaySeconds": 0}}
    stable, canary, paused = paused_canary(sandbox, namespace, strategy)
    counts(sandbox, namespace, {stable: 2, canary: 2})

    scale(sandbox, namespace, 8)
    counts(sandbox, namespace, {stable: 4, canary: 4})  # pods are the weight: half of the new total
    grown = status(sandbox, "web", namespace)
    assert (grown["state"], grown["currentStepIndex"]) == ("paused", 1)
    assert grown["pauseStartTime"] == paused["pauseStartTime"]  # the same pause, not a new one
    assert grown["canaryRevision"] == canary  # a new total is no new revision
    assert grown["weights"] == {"canary": 50, "stable": 50}
    assert scale_subresource(sandbox, namespace) == {
        "spec": {"replicas": 8},
        "status": {"replicas": 8, "selector": "app=web"},  # every pod: both carry the traffic
    }

    scale(sandbox, namespace, 2)
    counts(sandbox, namespace, {stable: 1, canary: 1})
    assert status(sandbox, "web", namespace)["pauseStartTime"] == paused["pauseStartTime"]

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
    done = wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy", stableRevision=canary)
    assert replicas_by_revision(sandbox, "web", namespace) == {stable: 0, canary: 2}
    assert (done["replicas"], done["hpaReplicas"]) == (2, 2)


def test_a_routed_canary_keeps_its_stable_at_the_new_total_and_shows_the_hpa_only_that(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    """Gateway API at weight 50: the stable at the full total, the canary at half of it beside it;
    the HPA measures both and is shown the total, not the canary's extra pods."""
    strategy = {
        "canary": {
            "steps": STEPS,
            "canaryService": "web-canary",
            "stableService": "web",
            "trafficRouting": {"gatewayAPI": {"httpRoute": "web"}},
            "scaleDownDelaySeconds": 0,
        }
    }
    services = (service("web", namespace, "web"), service("web-canary", namespace, "web"))
    stable, canary, paused = paused_canary(sandbox, namespace, strategy, *services, http_route(namespace))
    counts(sandbox, namespace, {stable: 4, canary: 2})

    scale(sandbox, namespace, 6)
    counts(sandbox, namespace, {stable: 6, canary: 3})
    refs = get(sandbox, "httproute", "web", namespace)["spec"]["rules"][0]["backendRefs"]
    assert {ref["name"]: ref["weight"] for ref in refs} == {"web": 50, "web-canary": 50}
    assert status(sandbox, "web", namespace)["pauseStartTime"] == paused["pauseStartTime"]
    assert scale_subresource(sandbox, namespace) == {
        "spec": {"replicas": 6},
        "status": {"replicas": 6, "selector": "app=web"},  # nine pods measured, six stand for the total
    }

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
    wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy", stableRevision=canary)
    counts(sandbox, namespace, {canary: 6})


def test_blue_green_waiting_for_promotion_follows_kubectl_scale_and_completes(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    strategy = {
        "blueGreen": {
            "activeService": "web",
            "previewService": "web-preview",
            "autoPromotionEnabled": False,
            "scaleDownDelaySeconds": 0,
        }
    }
    apply(
        sandbox,
        service("web", namespace, "web"),
        service("web-preview", namespace, "web"),
        rollout("web", namespace, "web:1", strategy, replicas=3),
    )
    blue = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    second = rollout("web", namespace, "web:2", strategy, replicas=3)
    apply(sandbox, second)
    green = template_hash(second["spec"]["template"])
    paused = wait_for(sandbox, "web", namespace, timeout=90, phase="Paused", canaryRevision=green)
    counts(sandbox, namespace, {blue: 3, green: 3})

    scale(sandbox, namespace, 5)
    counts(sandbox, namespace, {blue: 5, green: 5})
    grown = status(sandbox, "web", namespace)
    assert grown["pauseStartTime"] == paused["pauseStartTime"]
    assert get(sandbox, "service", "web", namespace)["spec"]["selector"][HASH_LABEL] == blue
    assert scale_subresource(sandbox, namespace) == {
        "spec": {"replicas": 5},
        "status": {"replicas": 5, "selector": f"app=web,{HASH_LABEL}={blue}"},  # the preview takes no traffic
    }

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=full")
    wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy", stableRevision=green)
    counts(sandbox, namespace, {green: 5})
    assert scale_subresource(sandbox, namespace)["status"] == {
        "replicas": 5,
        "selector": f"app=web,{HASH_LABEL}={green}",
    }
