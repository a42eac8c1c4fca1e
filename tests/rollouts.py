"""Rollouts as tests write them: manifests, kubectl through the sandbox, bounded waits on status."""

from __future__ import annotations

import json
import tempfile
from typing import Any

from delivery.operator import CONTROLLER_ID_LABEL
from sandbox.cluster import Sandbox
from tests.waiting import eventually

PROMOTE = "delivery.luojilab.com/promote"
ABORT = "delivery.luojilab.com/abort"


def rollout(
    name: str, namespace: str, image: str, strategy: dict[str, Any], replicas: int = 4
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": strategy,
        },
    }


def in_shard(body: dict[str, Any], shard: str) -> dict[str, Any]:
    """`body` labelled for the controller whose `--controller-id` is `shard`."""
    metadata = body["metadata"]
    metadata["labels"] = {**(metadata.get("labels") or {}), CONTROLLER_ID_LABEL: shard}
    return body


def service(name: str, namespace: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def apply(sandbox: Sandbox, *objects: dict[str, Any]) -> None:
    """`kubectl apply` of `objects`, as JSON (no YAML 1.1 surprises: kubectl reads `y` as true), from a
    file of its own, so that threads of one test may apply at once."""
    document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    with tempfile.NamedTemporaryFile("w", dir=sandbox.root, prefix="apply-", suffix=".json") as file:
        json.dump(document, file)
        file.flush()
        sandbox.kubectl_run("apply", "-f", file.name)


def get(sandbox: Sandbox, kind: str, name: str, namespace: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        sandbox.kubectl_run("get", kind, name, "-n", namespace, "-o", "json")
    )
    return document


def status(sandbox: Sandbox, name: str, namespace: str) -> dict[str, Any]:
    return get(sandbox, "rollout", name, namespace).get("status") or {}


def wait_for(
    sandbox: Sandbox, name: str, namespace: str, timeout: float = 60, **expected: Any
) -> dict[str, Any]:
    """Wait until every `expected` status field has its value; return the status. On timeout the
    failure shows the fields that differed at the last look, with the phase and its message."""

    def matches() -> dict[str, Any]:
        current = status(sandbox, name, namespace)
        differing = {key: current.get(key) for key, value in expected.items() if current.get(key) != value}
        if differing:
            shown = {**differing, "phase": current.get("phase"), "message": current.get("message")}
            raise LookupError(f"status has {shown}")  # `eventually` shows the last of these
        return current

    return eventually(matches, timeout=timeout, what=f"rollout {name} with {expected}")


def replicas_by_revision(sandbox: Sandbox, name: str, namespace: str) -> dict[str, int]:
    listing = json.loads(
        sandbox.kubectl_run(
            "get", "rs", "-n", namespace, "-l", f"delivery.luojilab.com/rollout={name}", "-o", "json"
        )
    )
    return {
        rs["metadata"]["labels"]["delivery.luojilab.com/pod-template-hash"]: rs["spec"]["replicas"]
        for rs in listing["items"]
    }


def events(sandbox: Sandbox, name: str, namespace: str) -> list[tuple[str, str]]:
    """The Rollout's Events in the order they happened: (reason, message)."""
    return [(event["reason"], event["message"]) for event in event_objects(sandbox, name, namespace)]


def event_objects(sandbox: Sandbox, name: str, namespace: str, kind: str = "Rollout") -> list[dict[str, Any]]:
    """The Rollout's (or another `kind`'s) Events, whole, in the order they happened."""
    listing = json.loads(
        sandbox.kubectl_run(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            f"involvedObject.kind={kind},involvedObject.name={name}",
            "-o",
            "json",
        )
    )
    ordered: list[dict[str, Any]] = sorted(listing["items"], key=lambda event: event["metadata"]["name"])
    return ordered
