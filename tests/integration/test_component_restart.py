"""A Component controller killed at any moment resumes correctly: SIGKILL it in the middle of
creating and of changing Components, and every object ends as rendered, each change reported by
exactly one Event."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from delivery.operator import CONTROLLER_ID_LABEL
from sandbox.cluster import Sandbox
from tests.components import component, events, wait_condition
from tests.controller import Controller
from tests.rollouts import apply, get
from tests.waiting import eventually

NAMES = [f"svc-{index}" for index in range(4)]


def sharded(name: str, namespace: str, image: str) -> dict[str, Any]:
    """As v1beta1 (this controller serves no webhook), handled only by the controller under test."""
    body = component(name, namespace, image=image)
    body["apiVersion"] = "component.luojilab.com/v1beta1"
    body["metadata"]["labels"] = {CONTROLLER_ID_LABEL: "chaos-components"}
    return body


def first_seen(sandbox: Sandbox, namespace: str, kind: str, image: str | None = None) -> bool:
    """Some Component has got its `kind` (at `image`) already: the controller is mid-way."""
    listing = json.loads(sandbox.kubectl_run("get", kind, "-n", namespace, "-o", "json"))["items"]
    if image is None:
        return bool(listing)
    return any(item["spec"]["template"]["spec"]["containers"][0]["image"] == image for item in listing)


def test_kills_in_the_middle_of_creating_and_changing_components_lose_and_repeat_nothing(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    controller = Controller(
        sandbox, tmp_path / "delivery.log", args=("--controller-id=chaos-components", "--webhook=off")
    )
    controller.start()

    def kill_when(probe: Callable[[], bool], what: str) -> None:
        """SIGKILL as soon as `probe` shows the controller mid-way, then start it again."""
        eventually(probe, timeout=60, interval=0.05, what=what)
        controller.kill()
        controller.start()

    try:
        apply(sandbox, *(sharded(name, namespace, "app:1") for name in NAMES))
        kill_when(lambda: first_seen(sandbox, namespace, "deployments"), "a first Deployment")
        kill_when(lambda: first_seen(sandbox, namespace, "services"), "a first Service")
        kill_when(lambda: first_seen(sandbox, namespace, "ingresses"), "a first Ingress")
        for name in NAMES:
            wait_condition(sandbox, name, namespace, "Ready", timeout=180)
        apply(sandbox, *(sharded(name, namespace, "app:2") for name in NAMES))
        kill_when(lambda: first_seen(sandbox, namespace, "deployments", "app:2"), "a first change")
        for name in NAMES:
            wait_condition(sandbox, name, namespace, "Ready", timeout=180)
            template = get(sandbox, "deployment", name, namespace)["spec"]["template"]
            assert template["spec"]["containers"][0]["image"] == "app:2"
        for name in NAMES:
            counted = collections.Counter(events(sandbox, name, namespace))
            assert counted[("Created", f"Created Deployment {name}")] == 1
            assert counted[("Created", f"Created Service {name}")] == 1
            assert counted[("Created", f"Created Ingress {name}")] == 1
            assert counted[("Updated", f"Updated Deployment {name}")] == 1  # the image change, once
            assert not any(reason == "Updated" and "Deployment" not in message for reason, message in counted)
    finally:
        controller.stop()
