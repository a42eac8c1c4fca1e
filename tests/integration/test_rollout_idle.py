"""A released Rollout goes quiet: once Healthy, the controller writes nothing to it, neither by
itself nor when an unrelated change of the Rollout makes it reconcile.

The basic canary with no Services is the measured case: the status's trafficMovedTime was
stamped anew at every reconcile, so every reconcile wrote, and each write's watch event was the
next reconcile. Writes are seen two ways: the session's `delivery run`, by watching the Rollout
from a resourceVersion (every write is one event); and a controller in this process, whose Kube
counts its requests by verb, reconciling the same Rollout from what the apiserver holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.aio import config as aio_config

from delivery.api.rollout import MachineState as State
from delivery.controllers.rollout import RolloutController
from delivery.kube.api import Kube
from delivery.kube.kinds import REPLICA_SET, ROLLOUT
from delivery.rollout.revision import ROLLOUT_LABEL
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, events, get, rollout, status, wait_for
from tests.waiting import eventually

NAME = "web"
GROUP, VERSION = ROLLOUT.api_version.split("/")
# A basic canary has no scale-down delay (Argo's scaleDownDelaySeconds applies only with a router),
# so no delay's wake-up makes it reconcile by itself: the touches below do, and each must write nothing.
BASIC = {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}]}}
QUIET = 10  # seconds watched for writes once released
AFTER_TOUCH = 3  # seconds watched after each change that makes the controller reconcile
BOOKKEEPING = ("managedFields", "resourceVersion")  # every write changes them: not what it changed


@pytest.fixture
async def kube(sandbox: Sandbox) -> AsyncIterator[Kube]:
    aio = await aio_config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    yield Kube(aio)
    await aio.close()


def released(sandbox: Sandbox, namespace: str, before: str) -> dict[str, Any] | None:
    """The status once a revision other than `before` is stable, its pods all ready, the old ones gone."""
    current = status(sandbox, NAME, namespace)
    revision = current.get("stableRevision")
    settled = current.get("replicas") == current.get("readyReplicas") == 2
    done = current.get("state") == State.HEALTHY.value and revision == current.get("canaryRevision")
    return current if done and settled and revision != before else None


def writes_after(api: client.ApiClient, since: dict[str, Any], seconds: int) -> list[dict[str, Any]]:
    """Each write to the Rollout after `since` (the Rollout as it was) for `seconds`: what it changed."""
    metadata = since["metadata"]
    stream = watch.Watch().stream(
        client.CustomObjectsApi(api).list_namespaced_custom_object,
        GROUP,
        VERSION,
        metadata["namespace"],
        "rollouts",
        field_selector=f"metadata.name={NAME}",
        resource_version=metadata["resourceVersion"],
        timeout_seconds=seconds,
    )
    writes = []
    previous = since
    for event in stream:
        current = event["object"]
        changed = {
            part: {
                key: value
                for key, value in current[part].items()
                if previous[part].get(key) != value and key not in BOOKKEEPING
            }
            for part in ("metadata", "spec", "status")
        }
        changed["by"] = max(current["metadata"]["managedFields"], key=lambda entry: entry["time"])["manager"]
        writes.append(changed)
        previous = current
    return writes


def touch(sandbox: Sandbox, namespace: str, field: str, value: str) -> dict[str, Any]:
    """Set an annotation or label (`field`) of the Rollout that is none of the controller's
    business: its watch event makes the controller reconcile. The Rollout as written."""
    patch = json.dumps({"metadata": {field: {"example.com/touched": value}}})
    written: dict[str, Any] = json.loads(
        sandbox.kubectl_run(
            "patch", "rollout", NAME, "-n", namespace, "--type=merge", "-p", patch, "-o", "json"
        )
    )
    return written


async def reconciled(controller: RolloutController, kube: Kube, namespace: str) -> None:
    """One reconcile of the Rollout by `controller`, from what the apiserver holds now."""
    key = (namespace, NAME)
    found = await kube.get(ROLLOUT, namespace, NAME)
    assert found is not None
    controller.cache.observe("MODIFIED", found)
    for rs in await kube.list(REPLICA_SET, namespace, f"{ROLLOUT_LABEL}={NAME}"):
        # A list's items lack their kind.
        listed = {**rs, "apiVersion": REPLICA_SET.api_version, "kind": REPLICA_SET.kind}
        controller.cache.observe_child("MODIFIED", key, listed)
    await controller.reconcile(key)


async def test_a_released_basic_canary_without_services_is_never_written_again(
    sandbox: Sandbox, namespace: str, controller: Controller, api: client.ApiClient, kube: Kube
) -> None:
    apply(sandbox, rollout(NAME, namespace, "web:1", BASIC, replicas=2))
    first = wait_for(sandbox, NAME, namespace, phase="Healthy")["stableRevision"]
    apply(sandbox, rollout(NAME, namespace, "web:2", BASIC, replicas=2))
    eventually(lambda: released(sandbox, namespace, first), timeout=90, what="web:2 released")
    reasons = [reason for reason, _ in events(sandbox, NAME, namespace)]
    assert reasons[2:] == [
        "RolloutUpdated",
        "RolloutStepCompleted",  # setWeight 50
        "RolloutPaused",
        "RolloutStepCompleted",  # pause 2s
        "RolloutPromoted",
        "RolloutCompleted",
    ]

    assert writes_after(api, get(sandbox, "rollout", NAME, namespace), QUIET) == []

    here = RolloutController(Kube(kube.client), 1)  # its own count of requests
    await reconciled(here, kube, namespace)
    for field, value in (("annotations", "1"), ("labels", "1"), ("annotations", "2")):
        touched = touch(sandbox, namespace, field, value)
        assert writes_after(api, touched, AFTER_TOUCH) == [], field  # `delivery run` reconciled
        await reconciled(here, kube, namespace)  # seconds after the last one: a stamp would differ
    assert here.kube.writes == 0, here.kube.requests
