"""Batch re-render on the sandbox: a ClusterProfile change reaches 50 Components at most 5 at a time,
and a template change that leaves one Component not ready halts the batch and says so.

The concurrency is measured from outside the controller: a watch on the Components records when
each was first seen rendered from the new inputs and when it was first seen ready after that.
Each test runs its own controller (`--controller-id`) with the batch flags it needs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from delivery.component.templating import TemplateSet
from delivery.operator import CONTROLLER_ID_LABEL
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, get
from tests.waiting import eventually

SHARD = "batch-tests"
LIMIT = 5
GROUP, VERSION = "component.luojilab.com", "v1beta1"
WAIT = 300  # seconds: generous, several test sessions share the machine's two cores


def worker(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Component",
        "metadata": {"name": name, "namespace": namespace, "labels": {CONTROLLER_ID_LABEL: SHARD}},
        "spec": {
            "workloadType": "Deployment",
            "developLanguage": "python",
            "runType": "worker",
            "image": "python-demo:1",
            "replicas": 1,
        },
    }


def ready(component: dict[str, Any]) -> bool:
    generation = component["metadata"]["generation"]
    return any(
        c["type"] == "Ready" and c["status"] == "True" and c.get("observedGeneration") == generation
        for c in (component.get("status") or {}).get("conditions", [])
    )


def revisions(sandbox: Sandbox, namespace: str) -> dict[str, tuple[str | None, bool]]:
    """Each Component's rendered revision and readiness."""
    listing = json.loads(sandbox.kubectl_run("get", f"components.{GROUP}", "-n", namespace, "-o", "json"))
    return {
        c["metadata"]["name"]: ((c.get("status") or {}).get("renderedRevision"), ready(c))
        for c in listing["items"]
    }


@dataclass
class Recorder:
    """Every Component event of a namespace as (time seen, name, rendered revision, ready)."""

    api: client.ApiClient
    namespace: str
    seen: list[tuple[float, str, str | None, bool]] = field(default_factory=list)
    stopping: bool = False

    def _follow(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        while not self.stopping:
            stream = watch.Watch().stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                "components",
                timeout_seconds=5,
            )
            for event in stream:
                body = event["object"]
                revision = (body.get("status") or {}).get("renderedRevision")
                self.seen.append((time.monotonic(), body["metadata"]["name"], revision, ready(body)))

    def start(self) -> None:
        threading.Thread(target=self._follow, daemon=True).start()

    def most_in_flight(self, target: str) -> int:
        """The most Components seen rendered from `target` and not yet ready at one moment."""
        flying: set[str] = set()
        done: set[str] = set()
        most = 0
        for _at, name, revision, is_ready in list(self.seen):
            if revision != target or name in done:
                continue
            if is_ready:
                flying.discard(name)
                done.add(name)
            else:
                flying.add(name)
            most = max(most, len(flying))
        return most


@pytest.fixture
def start_controller(
    sandbox: Sandbox, controller: Controller, tmp_path: Path, namespace: str
) -> Iterator[Callable[[int], Controller]]:
    """Starts this test's controller with a batch deadline; removes the ClusterProfile and templates
    ConfigMap the test made after (they reach every Component of the cluster), and this test's
    Components while its controller still runs (they are the batch's members: left Terminating,
    or not yet marked so when the namespace goes, the next test's batch would count them)."""
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "delivery-system"}})
    started: list[Controller] = []

    def start(deadline: int) -> Controller:
        flags = (f"--controller-id={SHARD}", "--webhook=off", f"--rerender-limit={LIMIT}")
        own = Controller(sandbox, tmp_path / "delivery.log", args=(*flags, f"--rerender-deadline={deadline}"))
        own.start()
        started.append(own)
        return own

    yield start
    sandbox.kubectl_run(
        "delete", f"components.{GROUP}", "--all", "-n", namespace, "--wait=true", "--timeout=120s"
    )
    for own in started:
        own.stop()
    sandbox.kubectl_run("delete", f"clusterprofiles.{GROUP}", "default", "--ignore-not-found")
    sandbox.kubectl_run(
        "delete", "configmap", "component-templates", "-n", "delivery-system", "--ignore-not-found"
    )


def rerendered_condition(sandbox: Sandbox) -> dict[str, Any] | None:
    profile = get(sandbox, f"clusterprofiles.{GROUP}", "default", "")
    conditions = (profile.get("status") or {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Rerendered"), None)


def all_ready_at_one_revision(sandbox: Sandbox, namespace: str, count: int) -> str | None:
    seen = revisions(sandbox, namespace)
    values = set(seen.values())
    if len(seen) == count and len(values) == 1:
        revision, is_ready = values.pop()
        return revision if is_ready and revision else None
    return None


def test_a_profile_change_re_renders_50_components_at_most_5_at_a_time(
    sandbox: Sandbox, api: client.ApiClient, namespace: str, start_controller: Callable[[int], Controller]
) -> None:
    start_controller(240)
    apply(sandbox, *(worker(f"c-{index:02d}", namespace) for index in range(50)))
    old = eventually(
        lambda: all_ready_at_one_revision(sandbox, namespace, 50),
        timeout=WAIT,
        what="50 Components ready",
    )
    recorder = Recorder(api, namespace)
    recorder.start()
    profile = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterProfile",
        "metadata": {"name": "default"},
        "spec": {"defaultResources": {"requests": {"cpu": "50m", "memory": "64Mi"}}},
    }
    apply(sandbox, profile)

    def moved_on() -> str | None:
        found = all_ready_at_one_revision(sandbox, namespace, 50)
        return found if found != old else None

    new = eventually(moved_on, timeout=WAIT, what="50 Components re-rendered and ready")
    recorder.stopping = True
    most = recorder.most_in_flight(new)
    assert 2 <= most <= LIMIT, most
    deployment = get(sandbox, "deployment", "c-49", namespace)
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "64Mi"}
    condition = eventually(
        lambda: (c := rerendered_condition(sandbox)) and c["status"] == "True" and c,
        timeout=60,
        what="the ClusterProfile says the batch is complete",
    )
    assert condition["reason"] == "Complete"


def test_a_component_not_ready_after_its_re_render_halts_the_batch(
    sandbox: Sandbox, namespace: str, start_controller: Callable[[int], Controller]
) -> None:
    own = start_controller(6)
    names = [f"c-{index:02d}" for index in range(40)]
    apply(sandbox, *(worker(name, namespace) for name in names))
    old = eventually(
        lambda: all_ready_at_one_revision(sandbox, namespace, 40),
        timeout=WAIT,
        what="40 Components ready",
    )
    # The profile the batch reports on; empty, it changes nothing rendered.
    apply(
        sandbox,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterProfile",
            "metadata": {"name": "default"},
            "spec": {},
        },
    )
    # A template that gives every pod a new annotation (each Component rolls its pods, which takes
    # a moment) and pins c-00's pods to a node pool that does not exist: they never run.
    shipped = TemplateSet.shipped().sources["pod.yaml.j2"]
    pinned = shipped.replace(
        "metadata:\n", "metadata:\n  annotations: {example.com/templates: '2'}\n", 1
    ).replace(
        "  {% if scheduling.nodeSelector %}",
        '  {% if name == "c-00" %}\n  nodeSelector: {"pool": "nowhere"}\n'
        "  {% elif scheduling.nodeSelector %}",
        1,
    )
    assert pinned.count("nowhere") == 1
    assert "example.com/templates" in pinned
    # And a Deployment available only 4 s after its pods are: kwok's pods are ready at once, and
    # without it the whole batch would be through before c-00's deadline.
    workload = TemplateSet.shipped().sources["workload-Deployment.yaml.j2"]
    slowed = workload.replace("spec:\n", "spec:\n  minReadySeconds: 4\n", 1)
    assert slowed != workload
    templates = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "component-templates", "namespace": "delivery-system"},
        "data": {"pod.yaml.j2": pinned, "workload-Deployment.yaml.j2": slowed},
    }
    apply(sandbox, templates)

    def halted() -> dict[str, Any] | None:
        condition = rerendered_condition(sandbox)
        return condition if condition and condition["reason"] == "Halted" else None

    condition = eventually(halted, timeout=WAIT, what="the batch halted")
    assert f"halted at {namespace}/c-00: not ready" in condition["message"]
    at_halt = revisions(sandbox, namespace)
    moved = sorted(name for name, (revision, _ready) in at_halt.items() if revision != old)
    assert moved[0] == "c-00"
    assert not at_halt["c-00"][1]
    assert len(moved) < len(names)  # stopped: the rest still run as rendered from the old inputs
    time.sleep(10)  # two rechecks of the held-back Components: none of them starts
    assert (
        sorted(name for name, (revision, _ready) in revisions(sandbox, namespace).items() if revision != old)
        == moved
    )
    assert "batch re-render: halted at" in own.tail()
