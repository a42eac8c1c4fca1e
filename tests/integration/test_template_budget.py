"""Bounded templates on the sandbox: an AnalysisTemplate that loops for ever fails its analyses with
the time budget named in each Rollout's status, while another Rollout of the same controller ends
its timed pause on time (the loops render in worker processes, never on the controller's loop)."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path
from typing import Any

from delivery.api.definition import DELIVERY_GROUP
from delivery.machine import Reason
from delivery.templating_budget import TIME_BUDGET
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, in_shard, rollout, status, wait_for

SHARD = "template-budget"
LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
LOOPING = 3
"""Rollouts analysed by the looping template, released at once: more than the workers, so the
renders take two rounds of the whole budget, and every worker is busy when the pause falls due."""
PAUSE = 3
"""Seconds: the other Rollout's pause, started with the looping renders, ends during their second round."""


def looping_template(namespace: str) -> dict[str, Any]:
    metric = {
        "name": "loops",
        "successCondition": "result == 1",
        "provider": {"web": {"url": "http://127.0.0.1:9/{{ args.namespace }}" + LOOPS}},
    }
    return {
        "apiVersion": f"{DELIVERY_GROUP}/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "loops", "namespace": namespace},
        "spec": {"metrics": [metric]},
    }


def released(name: str, namespace: str, image: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return in_shard(
        rollout(name, namespace, image, {"canary": {"steps": steps, "scaleDownDelaySeconds": 0}}, 2), SHARD
    )


def pause_lateness(sandbox: Sandbox, name: str, namespace: str, pause_step: int) -> float:
    """Seconds from when the pause at `pause_step` was due to when the status first showed it over."""
    started: str | None = None
    deadline = time.monotonic() + PAUSE + 60
    while time.monotonic() < deadline:
        current = status(sandbox, name, namespace)
        seen = time.time()
        if current.get("currentStepIndex") == pause_step and current.get("pauseStartTime"):
            started = current["pauseStartTime"]
        elif started is not None and (current.get("currentStepIndex") or 0) > pause_step:
            due = datetime.datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() + PAUSE
            return seen - due
        time.sleep(0.05)
    raise AssertionError(f"rollout {name}: the pause at step {pause_step} never ended (started {started})")


def test_a_looping_template_fails_on_its_budget_while_another_rollout_releases_on_time(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    controller = Controller.of_shard(sandbox, tmp_path / "delivery.log", SHARD, namespace=namespace)
    controller.start()
    try:
        analysed: list[dict[str, Any]] = [
            {"setWeight": 50},
            {"analysis": {"templates": [{"templateName": "loops"}]}},
        ]
        paused: list[dict[str, Any]] = [
            {"setWeight": 50},
            {"pause": {"duration": f"{PAUSE}s"}},
            {"setWeight": 75},
        ]
        looping = [f"loops-{index}" for index in range(LOOPING)]
        apply(sandbox, looping_template(namespace))
        apply(
            sandbox,
            *(released(name, namespace, "web:1", analysed) for name in looping),
            released("steady", namespace, "web:1", paused),
        )
        for name in (*looping, "steady"):
            wait_for(sandbox, name, namespace, timeout=60, phase="Healthy")

        lateness: list[float] = []
        watcher = threading.Thread(
            target=lambda: lateness.append(pause_lateness(sandbox, "steady", namespace, 1))
        )
        watcher.start()
        apply(
            sandbox,
            *(released(name, namespace, "web:2", analysed) for name in looping),
            released("steady", namespace, "web:2", paused),
        )
        watcher.join(timeout=PAUSE + 70)
        assert lateness, "the steady Rollout's pause was not watched to its end"
        # Within a second of due, plus what polling the status adds (a kubectl get, ~0.3 s here).
        assert -0.5 < lateness[0] < 1.5, f"the pause ended {lateness[0]:.2f}s after it was due"
        wait_for(sandbox, "steady", namespace, timeout=30, phase="Healthy")
        for name in looping:
            failed = wait_for(
                sandbox, name, namespace, timeout=30, phase="Paused", reason=Reason.ANALYSIS_INCONCLUSIVE
            )
            budget = f"AnalysisTemplate loops metric loops: took longer than {TIME_BUDGET:g}s to render"
            assert budget in failed["message"]
    finally:
        controller.stop()
