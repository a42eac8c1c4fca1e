"""spec.restartAt against the real apiserver: the pods replaced by eviction (a PodDisruptionBudget
holds it), mid-release too, a moment to come waited for, and a controller killed right after an
eviction resumes without taking a second pod at once."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

from delivery.cli.commands import format_restart_at
from delivery.kube.failpoints import ENVIRONMENT
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, get, in_shard, rollout, wait_for
from tests.waiting import eventually

ROLLING = {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}
CANARY = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": 0}}


def pods(sandbox: Sandbox, namespace: str) -> dict[str, str]:
    """The pods not being deleted: uid -> the revision label."""
    listed = json.loads(sandbox.kubectl_run("get", "pods", "-n", namespace, "-o", "json"))["items"]
    return {
        pod["metadata"]["uid"]: pod["metadata"]["labels"]["delivery.luojilab.com/pod-template-hash"]
        for pod in listed
        if not pod["metadata"].get("deletionTimestamp")
    }


def settled(sandbox: Sandbox, namespace: str, count: int) -> dict[str, str]:
    return eventually(
        lambda: found if len(found := pods(sandbox, namespace)) == count else None,
        timeout=60,
        what=f"{count} pods",
    )


def restart_at(sandbox: Sandbox, namespace: str, moment: datetime.datetime) -> str:
    """spec.restartAt set to `moment` as `kubectl delivery restart` writes it (rounded up)."""
    at = format_restart_at(moment)
    sandbox.kubectl_run(
        "patch",
        "rollout",
        "web",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"restartAt": at}}),
    )
    return at


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_a_pod_disruption_budget_holds_the_restart(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", ROLLING, replicas=2))
    wait_for(sandbox, "web", namespace, phase="Healthy", readyReplicas=2)
    before = settled(sandbox, namespace, 2)
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    }
    apply(sandbox, budget)
    eventually(
        lambda: get(sandbox, "pdb", "web", namespace).get("status", {}).get("expectedPods") == 2,
        timeout=30,
        what="the budget counting the pods",
    )
    at = restart_at(sandbox, namespace, now())
    time.sleep(8)  # more than one look of the restart (RESTART_CHECK)
    assert pods(sandbox, namespace) == before  # every eviction refused
    assert "restartedAt" not in get(sandbox, "rollout", "web", namespace)["status"]
    sandbox.kubectl_run("delete", "pdb", "web", "-n", namespace)
    wait_for(sandbox, "web", namespace, restartedAt=at)
    assert not set(settled(sandbox, namespace, 2)) & set(before)


def test_mid_release_both_revisions_restart_and_the_release_stays_where_it_is(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", CANARY, replicas=2))
    wait_for(sandbox, "web", namespace, phase="Healthy")
    apply(sandbox, rollout("web", namespace, "web:2", CANARY, replicas=2))
    paused = wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)
    before = settled(sandbox, namespace, paused["replicas"])
    assert set(before.values()) == {paused["stableRevision"], paused["canaryRevision"]}
    at = restart_at(sandbox, namespace, now())
    done = wait_for(sandbox, "web", namespace, restartedAt=at)
    after = settled(sandbox, namespace, paused["replicas"])
    assert not set(after) & set(before)
    assert sorted(after.values()) == sorted(before.values())
    assert (done["phase"], done["currentStepIndex"], done["canaryRevision"]) == (
        "Paused",
        1,
        paused["canaryRevision"],
    )


def test_a_restart_to_come_is_waited_for(sandbox: Sandbox, namespace: str, controller: Controller) -> None:
    apply(sandbox, rollout("web", namespace, "web:1", ROLLING, replicas=1))
    wait_for(sandbox, "web", namespace, phase="Healthy", readyReplicas=1)
    before = settled(sandbox, namespace, 1)
    moment = now() + datetime.timedelta(seconds=6)
    at = restart_at(sandbox, namespace, moment)
    time.sleep(3)
    assert pods(sandbox, namespace) == before
    wait_for(sandbox, "web", namespace, restartedAt=at)
    assert now() >= datetime.datetime.fromisoformat(at)
    assert not set(settled(sandbox, namespace, 1)) & set(before)


def test_killed_right_after_an_eviction_the_controller_takes_no_second_pod_at_once(
    sandbox: Sandbox, namespace: str, tmp_path: Path, crds: None
) -> None:
    shard = f"restart-{namespace}"
    first = Controller.of_shard(sandbox, tmp_path / "first.log", shard, namespace=namespace)
    first.start()
    try:
        apply(sandbox, in_shard(rollout("web", namespace, "web:1", ROLLING, replicas=3), shard))
        wait_for(sandbox, "web", namespace, phase="Healthy", readyReplicas=3)
        before = settled(sandbox, namespace, 3)
    finally:
        first.stop()
    # Healthy and unchanged, the Rollout needs no write: the first one after a restart is asked for
    # is the first eviction, and the controller is killed the moment it is answered.
    killed = Controller.of_shard(
        sandbox, tmp_path / "killed.log", shard, namespace=namespace, env={ENVIRONMENT: "written:1=kill"}
    )
    at = restart_at(sandbox, namespace, now())
    time.sleep(max((datetime.datetime.fromisoformat(at) - now()).total_seconds(), 0))  # due at the first look
    killed.start()
    assert killed.process is not None
    eventually(lambda: not killed.process.alive() or None, timeout=60, what="killed at the eviction")
    killed.process = None
    remaining = set(before) & set(pods(sandbox, namespace))
    assert len(remaining) == 2  # one pod evicted, no more
    resumed = Controller.of_shard(sandbox, tmp_path / "resumed.log", shard, namespace=namespace)
    resumed.start()
    try:
        wait_for(sandbox, "web", namespace, restartedAt=at)
        assert not set(settled(sandbox, namespace, 3)) & set(before)
    finally:
        resumed.stop()
