"""A controller killed at any moment resumes correctly: SIGKILL twenty times during a canary and the
release ends exactly as an uninterrupted one, no step executed twice, no Event lost."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from delivery.operator import CONTROLLER_ID_LABEL
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, events, replicas_by_revision, rollout, wait_for

STEPS: list[dict[str, Any]] = []
for weight in (20, 40, 60, 80):
    STEPS += [{"setWeight": weight}, {"pause": {"duration": "4s"}}]
UNINTERRUPTED = (
    ["RolloutUpdated", "RolloutCompleted", "RolloutUpdated"]
    + ["RolloutStepCompleted", "RolloutPaused", "RolloutStepCompleted"] * 4
    + ["RolloutPromoted", "RolloutCompleted"]
)


def sharded(body: dict[str, Any]) -> dict[str, Any]:
    """Handled only by the controller under test, not by the session's controller."""
    body["metadata"]["labels"] = {CONTROLLER_ID_LABEL: "chaos"}
    return body


def test_twenty_kills_during_a_canary_change_nothing(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    controller = Controller(
        sandbox, tmp_path / "delivery.log", args=("--controller-id=chaos", "--webhook=off")
    )
    controller.start()
    strategy = {"canary": {"steps": STEPS, "scaleDownDelaySeconds": 0}}
    try:
        apply(sandbox, sharded(rollout("web", namespace, "web:1", strategy, replicas=5)))
        first = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
        second = sharded(rollout("web", namespace, "web:2", strategy, replicas=5))
        apply(sandbox, second)
        chaos = random.Random(20)
        for _ in range(20):
            time.sleep(chaos.uniform(0.5, 2.0))  # the kill schedule, not a wait for a condition
            controller.kill()
            controller.start()
        new = template_hash(second["spec"]["template"])
        wait_for(sandbox, "web", namespace, timeout=180, phase="Healthy", stableRevision=new)
        assert [reason for reason, _ in events(sandbox, "web", namespace)] == UNINTERRUPTED
        assert replicas_by_revision(sandbox, "web", namespace) == {first: 0, new: 5}
    finally:
        controller.stop()
