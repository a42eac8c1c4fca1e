"""Canary rollouts through the real apiserver, controller-manager and scheduler."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import ABORT, PROMOTE, apply, events, replicas_by_revision, rollout, status, wait_for
from tests.waiting import eventually

STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"pause": {"duration": "5s"}},
    {"setWeight": 50},
    {"pause": {}},
]
BASIC = {"canary": {"steps": STEPS, "abortScaleDownDelaySeconds": 0}}


def release(sandbox: Sandbox, namespace: str, image: str, strategy: dict[str, Any] = BASIC) -> None:
    apply(sandbox, rollout("web", namespace, image, strategy, replicas=5))


@pytest.mark.matrix
def test_a_canary_walks_its_steps_and_is_promoted_by_annotation(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    release(sandbox, namespace, "web:1")
    first = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]

    release(sandbox, namespace, "web:2")
    paused = wait_for(sandbox, "web", namespace, timeout=60, phase="Paused", currentStepIndex=3)
    new = paused["canaryRevision"]
    assert new != first
    assert paused["weights"] == {"canary": 50, "stable": 50}
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 2, new: 3}  # pods are the weight

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
    done = wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy", stableRevision=new)
    assert done["weights"] == {"canary": 0, "stable": 100}
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 0, new: 5}
    annotations = sandbox.kubectl_run(
        "get", "rollout", "web", "-n", namespace, "-o", "jsonpath={.metadata.annotations}"
    )
    assert PROMOTE not in annotations  # consumed

    reasons = [reason for reason, _ in events(sandbox, "web", namespace)]
    assert reasons == [
        "RolloutUpdated",
        "RolloutCompleted",  # the first revision: no steps
        "RolloutUpdated",
        "RolloutStepCompleted",  # setWeight 20
        "RolloutPaused",
        "RolloutStepCompleted",  # pause 5s
        "RolloutStepCompleted",  # setWeight 50
        "RolloutPaused",
        "RolloutStepCompleted",  # pause, promoted by annotation
        "RolloutPromoted",
        "RolloutCompleted",
    ]
    conditions = {c["type"]: c for c in done["conditions"]}
    assert conditions["Completed"]["status"] == "True"
    assert conditions["Progressing"]["status"] == "False"
    assert all(c["observedGeneration"] == 2 for c in conditions.values())


def test_an_abort_mid_canary_returns_everything_to_stable(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    release(sandbox, namespace, "web:1")
    first = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    release(sandbox, namespace, "web:2")
    wait_for(sandbox, "web", namespace, timeout=60, phase="Paused", currentStepIndex=3)

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{ABORT}=true")
    aborted = wait_for(sandbox, "web", namespace, timeout=60, phase="Aborted", state="aborted")
    assert aborted["stableRevision"] == first
    assert aborted["weights"] == {"canary": 0, "stable": 100}
    new = aborted["canaryRevision"]
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 5, new: 0}
    reasons = [reason for reason, _ in events(sandbox, "web", namespace)]
    assert reasons[-2:] == ["RolloutAborted", "RolloutRolledBack"]


def test_a_newer_image_mid_canary_supersedes_it(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    release(sandbox, namespace, "web:1")
    first = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]
    release(sandbox, namespace, "web:2")
    second = wait_for(sandbox, "web", namespace, timeout=60, phase="Paused", currentStepIndex=3)[
        "canaryRevision"
    ]

    release(sandbox, namespace, "web:3")
    # Until the controller sees the change, the status still shows the second canary paused.
    eventually(
        lambda: status(sandbox, "web", namespace).get("canaryRevision") not in (first, second) or None,
        timeout=60,
        what="the third revision taken up",
    )
    third = wait_for(sandbox, "web", namespace, timeout=60, phase="Paused", currentStepIndex=3)
    assert third["canaryRevision"] not in (first, second)
    assert third["stableRevision"] == first
    replicas = replicas_by_revision(sandbox, "web", namespace)
    assert replicas[second] == 0
    assert replicas[first] + replicas[third["canaryRevision"]] == 5
    assert status(sandbox, "web", namespace)["weights"]["canary"] == 50
