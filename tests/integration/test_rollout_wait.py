"""Release pipelines block on `kubectl wait` right after `kubectl apply`, with no sleep between."""

from __future__ import annotations

import subprocess

import yaml

from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import ABORT, rollout, status, wait_for

STRATEGY = {
    "canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "3s"}}], "scaleDownDelaySeconds": 0}
}


def kubectl(sandbox: Sandbox, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(sandbox.kubectl), f"--kubeconfig={sandbox.kubeconfig}", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def apply_then_wait(sandbox: Sandbox, namespace: str, image: str, condition: str) -> subprocess.Popen[str]:
    """`kubectl apply -f -` of a new image, and the pipeline's `kubectl wait` started at once."""
    applying = kubectl(sandbox, "apply", "-f", "-")
    out, _ = applying.communicate(yaml.safe_dump(rollout("web", namespace, image, STRATEGY)), timeout=30)
    assert applying.returncode == 0, out
    return kubectl(
        sandbox, "wait", f"--for=condition={condition}", "rollout/web", "-n", namespace, "--timeout=120s"
    )


def test_wait_for_completed_returns_only_when_the_new_revision_is_promoted(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    first = apply_then_wait(sandbox, namespace, "web:1", "Completed")
    assert first.wait(timeout=120) == 0
    stable = status(sandbox, "web", namespace)["stableRevision"]

    waiting = apply_then_wait(sandbox, namespace, "web:2", "Completed")
    assert waiting.wait(timeout=120) == 0, waiting.communicate()[0]
    done = status(sandbox, "web", namespace)
    assert done["stableRevision"] != stable  # not the previous release's Completed
    assert done["stableRevision"] == done["canaryRevision"]
    assert done["phase"] == "Healthy"


def test_wait_for_aborted_returns_when_the_release_is_aborted(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    assert apply_then_wait(sandbox, namespace, "web:1", "Completed").wait(timeout=120) == 0
    waiting = apply_then_wait(sandbox, namespace, "web:2", "Aborted")
    wait_for(sandbox, "web", namespace, phase="Paused")
    assert waiting.poll() is None  # still waiting while the canary is paused
    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{ABORT}=true")
    assert waiting.wait(timeout=60) == 0, waiting.communicate()[0]
    assert status(sandbox, "web", namespace)["phase"] == "Aborted"
