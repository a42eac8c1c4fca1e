"""`kubectl delivery` through the real kubectl, which finds the plugin on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandbox.cluster import Sandbox
from tests.integration.conftest import Controller
from tests.rollouts import apply, rollout, wait_for

STRATEGY = {
    "canary": {
        "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}],
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
    }
}


def plugin(sandbox: Sandbox, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [str(sandbox.kubectl), "delivery", f"--kubeconfig={sandbox.kubeconfig}", "-n", namespace, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        check=False,
        timeout=60,
    )


def test_promote_pause_abort_retry_and_status_codes(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", STRATEGY))
    wait_for(sandbox, "web", namespace, phase="Healthy")
    assert plugin(sandbox, namespace, "status", "web").returncode == 0

    apply(sandbox, rollout("web", namespace, "web:2", STRATEGY))
    wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)
    assert plugin(sandbox, namespace, "status", "web").returncode == 2  # in flight

    promoted = plugin(sandbox, namespace, "promote", "web")
    assert promoted.returncode == 0, promoted.stderr
    wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=3)

    assert plugin(sandbox, namespace, "abort", "web").returncode == 0
    wait_for(sandbox, "web", namespace, phase="Aborted", state="aborted")
    failed = plugin(sandbox, namespace, "status", "web")
    assert failed.returncode == 1
    assert "Aborted" in failed.stdout

    assert plugin(sandbox, namespace, "retry", "web").returncode == 0
    wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)
    assert plugin(sandbox, namespace, "promote", "web", "--full").returncode == 0
    wait_for(sandbox, "web", namespace, phase="Healthy", state="healthy", currentStepIndex=4)
    assert plugin(sandbox, namespace, "status", "web", "--timeout", "30").returncode == 0


def test_pause_holds_a_release_until_promoted(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    timed = {
        "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "30s"}}], "scaleDownDelaySeconds": 0}
    }
    apply(sandbox, rollout("web", namespace, "web:1", timed))
    wait_for(sandbox, "web", namespace, phase="Healthy")
    apply(sandbox, rollout("web", namespace, "web:2", timed))
    wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)
    assert plugin(sandbox, namespace, "pause", "web").returncode == 0
    paused = wait_for(sandbox, "web", namespace, pausedByPerson=True)
    assert paused["message"] == "paused by a person"
    assert plugin(sandbox, namespace, "promote", "web").returncode == 0  # a held pause step: skipped
    wait_for(sandbox, "web", namespace, pausedByPerson=False, phase="Healthy", currentStepIndex=2)
