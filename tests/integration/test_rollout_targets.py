"""What a Rollout releases, and what it says when it cannot: a Deployment taken over by
workloadRef, a rolling update, and a spec that names an Ingress that does not exist."""

from __future__ import annotations

from typing import Any

from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.integration.test_rollout_traffic import ingress
from tests.rollouts import apply, get, replicas_by_revision, rollout, service, wait_for
from tests.waiting import eventually


def deployment(namespace: str) -> dict[str, Any]:
    labels = {"app": "legacy"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "legacy", "namespace": namespace},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "legacy:1"}]},
            },
        },
    }


def test_a_workload_ref_takes_over_a_deployment_and_scales_it_down(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, deployment(namespace))
    eventually(
        lambda: get(sandbox, "deployment", "legacy", namespace).get("status", {}).get("readyReplicas") == 3,
        timeout=60,
        what="the Deployment ready",
    )
    taking_over = {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "legacy", "namespace": namespace},
        "spec": {
            "replicas": 3,
            "workloadRef": {"name": "legacy"},
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
        },
    }
    apply(sandbox, taking_over)
    healthy = wait_for(sandbox, "legacy", namespace, phase="Healthy")
    assert replicas_by_revision(sandbox, "legacy", namespace) == {healthy["stableRevision"]: 3}
    eventually(
        lambda: get(sandbox, "deployment", "legacy", namespace)["spec"]["replicas"] == 0,
        timeout=30,
        what="the Deployment scaled to zero",
    )


def test_a_rolling_update_replaces_every_pod(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    strategy = {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}
    apply(sandbox, rollout("web", namespace, "web:1", strategy, replicas=4))
    first = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    apply(sandbox, rollout("web", namespace, "web:2", strategy, replicas=4))
    done = eventually(
        lambda: (
            (s := wait_for(sandbox, "web", namespace, phase="Healthy")) and s["stableRevision"] != first and s
        ),
        timeout=90,
        what="the new revision stable",
    )
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 0, done["stableRevision"]: 4}


def test_a_missing_ingress_is_said_in_the_status_and_the_release_resumes_when_it_appears(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    strategy = {
        "canary": {
            "steps": [{"setWeight": 30}, {"pause": {}}],
            "canaryService": "web-canary",
            "stableService": "web",
            "trafficRouting": {"nginx": {"stableIngress": "web"}},
        }
    }
    apply(
        sandbox,
        service("web", namespace, "web"),
        service("web-canary", namespace, "web"),
        rollout("web", namespace, "web:1", strategy, replicas=2),
    )
    wait_for(sandbox, "web", namespace, phase="Healthy")  # the first release moves no traffic
    apply(sandbox, rollout("web", namespace, "web:2", strategy, replicas=2))
    degraded = wait_for(sandbox, "web", namespace, phase="Degraded")
    assert degraded["message"] == f"stable Ingress {namespace}/web not found"
    assert {c["type"]: c["status"] for c in degraded["conditions"]}["InvalidSpec"] == "True"

    apply(sandbox, ingress(namespace))
    paused = wait_for(sandbox, "web", namespace, timeout=90, phase="Paused")
    assert paused["currentStepIndex"] == 1
    assert "InvalidSpec" not in {c["type"] for c in paused["conditions"]}
    canary = get(sandbox, "ingress", "web-canary", namespace)
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "30"
