"""High availability: two replicas elect a leader with a Lease; SIGKILL the leader in the middle of a
canary and the warm standby takes the Lease and finishes the release, nothing done twice. A leader
whose Lease is taken from it stops writing, and goes on once it holds the Lease again; stopped, it
hands the Lease back."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from delivery.operator import CONTROLLER_ID_LABEL
from delivery.ops.leader import lease_name, micro_time
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox, free_port
from tests.controller import Controller
from tests.rollouts import apply, event_objects, get, replicas_by_revision, rollout, status, wait_for
from tests.waiting import eventually

SHARD = "ha"
STEPS: list[dict[str, Any]] = []
for weight in (25, 50, 75):
    STEPS += [{"setWeight": weight}, {"pause": {"duration": "3s"}}]
UNINTERRUPTED = (
    ["RolloutUpdated", "RolloutCompleted", "RolloutUpdated"]
    + ["RolloutStepCompleted", "RolloutPaused", "RolloutStepCompleted"] * 3
    + ["RolloutPromoted", "RolloutCompleted"]
)


def replica(sandbox: Sandbox, namespace: str, log: Path, identity: str, *extra: str) -> Controller:
    return Controller(
        sandbox,
        log,
        args=(
            *extra,
            f"--controller-id={SHARD}",
            f"--namespace={namespace}",
            "--webhook=off",
            "--leader-elect",
            f"--identity={identity}",
            f"--lease-namespace={namespace}",
            "--lease-duration=4",
            "--renew-deadline=3",
            "--retry-period=0.5",
        ),
    )


def micro_now() -> str:
    return micro_time(datetime.datetime.now(datetime.UTC))


def lease(sandbox: Sandbox, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(
        sandbox.kubectl_run("get", "lease", lease_name(SHARD), "-n", namespace, "-o", "json")
    )["spec"]
    return spec


@pytest.mark.matrix
def test_the_standby_finishes_a_canary_when_the_leader_is_killed(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    first = replica(sandbox, namespace, tmp_path / "a.log", "replica-a")
    second = replica(sandbox, namespace, tmp_path / "b.log", "replica-b")
    strategy = {"canary": {"steps": STEPS, "scaleDownDelaySeconds": 0}}
    labels = {CONTROLLER_ID_LABEL: SHARD}
    try:
        first.start()
        eventually(
            lambda: lease(sandbox, namespace)["holderIdentity"] == "replica-a", timeout=60, what="a leading"
        )
        second.start()
        eventually(lambda: "caches synced" in second.tail(), timeout=60, what="b warm")
        web = rollout("web", namespace, "web:1", strategy, replicas=4)
        web["metadata"]["labels"] = labels
        apply(sandbox, web)
        first_revision = wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")["stableRevision"]
        web = rollout("web", namespace, "web:2", strategy, replicas=4)
        web["metadata"]["labels"] = labels
        apply(sandbox, web)
        eventually(
            lambda: status(sandbox, "web", namespace).get("currentStepIndex", 0) >= 2,
            timeout=60,
            what="the canary half-way",
        )
        first.kill()

        new = template_hash(web["spec"]["template"])
        final = wait_for(sandbox, "web", namespace, timeout=120, phase="Healthy", stableRevision=new)
        events = event_objects(sandbox, "web", namespace)
        assert [event["reason"] for event in events] == UNINTERRUPTED
        assert final["transitionCount"] == len(UNINTERRUPTED)
        writers = [event["reportingInstance"] for event in events]
        # a leads, then b: never interleaved, and b wrote the rest of the canary after the kill
        switch = writers.index("replica-b")
        assert set(writers[:switch]) == {"replica-a"}
        assert set(writers[switch:]) == {"replica-b"}
        assert 3 <= switch < len(UNINTERRUPTED)
        assert replicas_by_revision(sandbox, "web", namespace) == {first_revision: 0, new: 4}
        taken = lease(sandbox, namespace)
        assert taken["holderIdentity"] == "replica-b"
        assert taken["leaseTransitions"] >= 1
    finally:
        first.stop()
        second.stop()


def queue_depth(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(r'^delivery_workqueue_depth\{resource="rollouts"\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


def test_a_leader_whose_lease_is_taken_stops_writing_until_it_leads_again(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    port = free_port()
    controller = replica(
        sandbox,
        namespace,
        tmp_path / "a.log",
        "replica-a",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={port}",
    )
    strategy = {"canary": {"steps": [{"setWeight": 50}], "scaleDownDelaySeconds": 0}}
    web = rollout("web", namespace, "web:1", strategy)
    web["metadata"]["labels"] = {CONTROLLER_ID_LABEL: SHARD}
    try:
        controller.start()
        apply(sandbox, web)
        wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy")
        # Someone else holds the Lease now (for an hour): replica-a cannot renew and must step down.
        thief = {"holderIdentity": "thief", "leaseDurationSeconds": 3600, "renewTime": micro_now()}
        sandbox.kubectl_run(
            "patch",
            "lease",
            lease_name(SHARD),
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps({"spec": thief}),
        )
        eventually(lambda: "lost the Lease" in controller.tail(), timeout=30, what="replica-a stepping down")
        web["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
        apply(sandbox, web)
        generation = get(sandbox, "rollout", "web", namespace)["metadata"]["generation"]
        # The change reached replica-a's watch and waits in its closed queue: nothing reconciles it.
        eventually(lambda: queue_depth(port) == 1.0, timeout=30, what="the change queued")
        assert status(sandbox, "web", namespace)["observedGeneration"] == generation - 1
        leading = f'delivery_leader{{lease="{lease_name(SHARD)}"}} 0.0'
        assert leading in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines()
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200  # a ready standby

        sandbox.kubectl_run("delete", "lease", lease_name(SHARD), "-n", namespace)
        new = template_hash(web["spec"]["template"])
        wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy", stableRevision=new)
        assert lease(sandbox, namespace)["holderIdentity"] == "replica-a"
        controller.stop()  # SIGTERM: the Lease is handed back, no standby has to wait it out
        released = lease(sandbox, namespace)
        assert (released.get("holderIdentity"), released["leaseDurationSeconds"]) == (None, 1)
    finally:
        controller.stop()
