"""Components as tests write them: the five-line manifest, status and Events through kubectl."""

from __future__ import annotations

import json
from typing import Any

from sandbox.cluster import Sandbox
from tests.rollouts import event_objects, get
from tests.waiting import eventually

FIVE_LINES = {
    "workloadType": "Deployment",
    "developLanguage": "python",
    "runType": "server",
    "image": "python-demo:latest",
    "port": 8080,
}
"""The spec of the design's five-line Component."""


def component(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """The five-line Component (v1alpha1, as our users write it), with `spec` changes."""
    return {
        "apiVersion": "component.luojilab.com/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**FIVE_LINES, **spec},
    }


def conditions(sandbox: Sandbox, name: str, namespace: str) -> dict[str, dict[str, Any]]:
    status = get(sandbox, "component", name, namespace).get("status") or {}
    return {condition["type"]: condition for condition in status.get("conditions", [])}


def wait_condition(
    sandbox: Sandbox, name: str, namespace: str, kind: str, status: str = "True", *, timeout: float = 90
) -> dict[str, Any]:
    """Wait until the Component's condition `kind` has `status` for its current generation."""

    def holds() -> dict[str, Any] | None:
        current = get(sandbox, "component", name, namespace)
        generation = current["metadata"]["generation"]
        found = conditions(sandbox, name, namespace).get(kind)
        if found and found["status"] == status and found.get("observedGeneration") == generation:
            return found
        return None

    return eventually(holds, timeout=timeout, what=f"component {name} {kind}={status}")


def pods(sandbox: Sandbox, namespace: str, selector: str) -> dict[str, str]:
    """Pod name -> UID of the pods `selector` selects."""
    listing = json.loads(sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", selector, "-o", "json"))
    return {pod["metadata"]["name"]: pod["metadata"]["uid"] for pod in listing["items"]}


def events(sandbox: Sandbox, name: str, namespace: str) -> list[tuple[str, str]]:
    """The Component's Events: (reason, message)."""
    return [
        (event["reason"], event["message"]) for event in event_objects(sandbox, name, namespace, "Component")
    ]
