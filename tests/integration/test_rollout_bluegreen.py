"""Blue-green: the active Service switches to the new revision after promotion, or stays on abort."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import (
    ABORT,
    PROMOTE,
    apply,
    events,
    get,
    replicas_by_revision,
    rollout,
    service,
    wait_for,
)

HASH = "delivery.luojilab.com/pod-template-hash"


def strategy(auto: bool) -> dict[str, Any]:
    return {
        "blueGreen": {
            "activeService": "web",
            "previewService": "web-preview",
            "autoPromotionEnabled": auto,
            "scaleDownDelaySeconds": 0,
        }
    }


def selects(sandbox: Sandbox, name: str, namespace: str) -> str:
    selector: dict[str, str] = get(sandbox, "service", name, namespace)["spec"]["selector"]
    return selector[HASH]


@pytest.mark.matrix
def test_blue_green_promotes_then_scales_the_old_revision_down(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(
        sandbox,
        service("web", namespace, "web"),
        service("web-preview", namespace, "web"),
        rollout("web", namespace, "web:1", strategy(auto=False), replicas=3),
    )
    blue = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    assert selects(sandbox, "web", namespace) == blue

    apply(sandbox, rollout("web", namespace, "web:2", strategy(auto=False), replicas=3))
    paused = wait_for(sandbox, "web", namespace, phase="Paused")
    green = paused["canaryRevision"]
    assert selects(sandbox, "web", namespace) == blue  # production still on blue
    assert selects(sandbox, "web-preview", namespace) == green
    assert replicas_by_revision(sandbox, "web", namespace) == {blue: 3, green: 3}

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=full")
    wait_for(sandbox, "web", namespace, phase="Healthy", stableRevision=green)
    assert selects(sandbox, "web", namespace) == green
    wait_for(sandbox, "web", namespace, readyReplicas=3)
    assert replicas_by_revision(sandbox, "web", namespace) == {blue: 0, green: 3}


def test_blue_green_abort_keeps_production_on_the_old_revision(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(
        sandbox,
        service("web", namespace, "web"),
        service("web-preview", namespace, "web"),
        rollout("web", namespace, "web:1", strategy(auto=False), replicas=2),
    )
    blue = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    apply(sandbox, rollout("web", namespace, "web:2", strategy(auto=False), replicas=2))
    green = wait_for(sandbox, "web", namespace, phase="Paused")["canaryRevision"]

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{ABORT}=true")
    wait_for(sandbox, "web", namespace, phase="Aborted", state="aborted")
    assert selects(sandbox, "web", namespace) == blue
    assert selects(sandbox, "web-preview", namespace) == blue
    assert replicas_by_revision(sandbox, "web", namespace) == {blue: 2, green: 0}


def test_blue_green_auto_promotion(sandbox: Sandbox, namespace: str, controller: Controller) -> None:
    apply(sandbox, service("web", namespace, "web"), rollout("web", namespace, "web:1", strategy(auto=True)))
    wait_for(sandbox, "web", namespace, phase="Healthy")
    second = rollout("web", namespace, "web:2", strategy(auto=True))
    apply(sandbox, second)
    green = template_hash(second["spec"]["template"])
    wait_for(sandbox, "web", namespace, phase="Healthy", stableRevision=green)
    assert selects(sandbox, "web", namespace) == green
    reasons = [reason for reason, _ in events(sandbox, "web", namespace)]
    assert reasons[-3:] == ["RolloutUpdated", "RolloutPromoted", "RolloutCompleted"]
