"""High availability: two replicas elect a leader with a Lease; SIGKILL the leader in the middle of a
canary and the warm standby takes the Lease and finishes the release, nothing done twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from delivery.operator import CONTROLLER_ID_LABEL
from delivery.ops.leader import lease_name
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests.integration.conftest import Controller
from tests.rollouts import apply, rollout, status, wait_for
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


def replica(sandbox: Sandbox, namespace: str, log: Path, identity: str) -> Controller:
    return Controller(
        sandbox,
        log,
        args=(
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


def lease(sandbox: Sandbox, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(
        sandbox.kubectl_run("get", "lease", lease_name(SHARD), "-n", namespace, "-o", "json")
    )["spec"]
    return spec


def rollout_events(sandbox: Sandbox, name: str, namespace: str) -> list[dict[str, Any]]:
    listing = json.loads(
        sandbox.kubectl_run(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            f"involvedObject.kind=Rollout,involvedObject.name={name}",
            "-o",
            "json",
        )
    )
    return sorted(listing["items"], key=lambda event: event["metadata"]["name"])


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
        wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")
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
        events = rollout_events(sandbox, "web", namespace)
        assert [event["reason"] for event in events] == UNINTERRUPTED
        assert final["transitionCount"] == len(UNINTERRUPTED)
        writers = [event["reportingInstance"] for event in events]
        # a leads, then b: never interleaved, and b wrote the rest of the canary after the kill
        switch = writers.index("replica-b")
        assert set(writers[:switch]) == {"replica-a"}
        assert set(writers[switch:]) == {"replica-b"}
        assert 3 <= switch < len(UNINTERRUPTED)
        taken = lease(sandbox, namespace)
        assert taken["holderIdentity"] == "replica-b"
        assert taken["leaseTransitions"] >= 1
    finally:
        first.stop()
        second.stop()
