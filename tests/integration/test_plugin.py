"""`kubectl delivery` through the real kubectl, which finds the plugin on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, rollout, wait_for
from tests.waiting import eventually

STRATEGY = {
    "canary": {
        "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}],
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
    }
}


def plugin_command(sandbox: Sandbox, namespace: str, *args: str) -> tuple[list[str], dict[str, str]]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    argv = [str(sandbox.kubectl), "delivery", f"--kubeconfig={sandbox.kubeconfig}", "-n", namespace, *args]
    return argv, {**os.environ, "PATH": path}


def plugin(sandbox: Sandbox, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv, env = plugin_command(sandbox, namespace, *args)
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=60)


class Watching:
    """`kubectl delivery get rollout --watch` piped, its output collected as it comes."""

    def __init__(self, sandbox: Sandbox, namespace: str, name: str) -> None:
        argv, env = plugin_command(sandbox, namespace, "get", "rollout", name, "--watch")
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def shown(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))


@pytest.fixture
def watching(sandbox: Sandbox, namespace: str) -> Iterator[Watching]:
    running = Watching(sandbox, namespace, "web")
    yield running
    running.process.kill()
    running.process.wait(timeout=10)


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


def test_get_shows_the_tree_and_watch_shows_each_step_as_it_changes(
    sandbox: Sandbox, namespace: str, controller: Controller, watching: Watching
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", STRATEGY))
    healthy = wait_for(sandbox, "web", namespace, phase="Healthy")
    once = plugin(sandbox, namespace, "get", "rollout", "web")
    assert once.returncode == 0, once.stderr
    assert f"rollout {namespace}/web  Healthy  canary" in once.stdout
    assert f"{healthy['stableRevision']} stable" in once.stdout
    assert "\x1b[" not in once.stdout  # piped: plain text

    apply(sandbox, rollout("web", namespace, "web:2", STRATEGY))
    eventually(lambda: watching.shown("step 1/4: pause (until promoted)"), timeout=60, what="step 1 watched")
    assert watching.shown("traffic: stable 50%, canary 50%")
    assert plugin(sandbox, namespace, "promote", "web").returncode == 0
    eventually(lambda: watching.shown("step 3/4: pause (until promoted)"), timeout=60, what="step 3 watched")
    assert watching.shown("traffic: stable 20%, canary 80%")
    assert watching.process.poll() is None  # --watch keeps watching


def test_get_of_a_missing_rollout_fails_clearly(sandbox: Sandbox, namespace: str) -> None:
    missing = plugin(sandbox, namespace, "get", "rollout", "nothing")
    assert missing.returncode == 1
    assert f"rollout {namespace}/nothing not found" in missing.stderr
