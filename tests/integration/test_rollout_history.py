"""Bounded history through the real apiserver and controller-manager: old ReplicaSets beyond
`revisionHistoryLimit` are deleted, oldest first, and the stable one never is."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import PROMOTE, apply, rollout, status, wait_for
from tests.waiting import eventually

ROLLING = {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}
RELEASES = 15


def limited(
    name: str, namespace: str, image: str, strategy: dict[str, Any], limit: int | None
) -> dict[str, Any]:
    manifest = rollout(name, namespace, image, strategy, replicas=1)
    if limit is not None:
        manifest["spec"]["revisionHistoryLimit"] = limit
    return manifest


def replicasets(sandbox: Sandbox, name: str, namespace: str) -> dict[str, dict[str, Any]]:
    """The Rollout's ReplicaSets by revision."""
    listing = json.loads(
        sandbox.kubectl_run(
            "get", "rs", "-n", namespace, "-l", f"delivery.luojilab.com/rollout={name}", "-o", "json"
        )
    )
    return {
        rs["metadata"]["labels"]["delivery.luojilab.com/pod-template-hash"]: rs for rs in listing["items"]
    }


def next_second(replicaset: dict[str, Any]) -> None:
    """Wait for the second after `replicaset`'s creation: creation times have a one-second
    resolution, and the history goes by them, so each release's ReplicaSet gets a second of its own
    and the test knows which is older."""
    created = datetime.datetime.fromisoformat(replicaset["metadata"]["creationTimestamp"])
    time.sleep(max(0.0, created.timestamp() + 1 - time.time()))


def test_only_the_newest_old_replicasets_within_the_limit_remain(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    """Fifteen releases in a row of two Rollouts side by side: one keeps 3 old ReplicaSets, the
    other the default 10."""
    limits = {"three": 3, "default": None}
    released: dict[str, list[str]] = {name: [] for name in limits}
    for n in range(1, RELEASES + 1):
        apply(
            sandbox, *(limited(name, namespace, f"web:{n}", ROLLING, limit) for name, limit in limits.items())
        )
        for name in limits:
            done = wait_for(sandbox, name, namespace, phase="Healthy", observedGeneration=n)
            released[name].append(done["stableRevision"])
        assert len(replicasets(sandbox, "three", namespace)) <= 3 + 2  # the stable, one going
        next_second(replicasets(sandbox, "three", namespace)[released["three"][-1]])
    assert all(len(set(revisions)) == RELEASES for revisions in released.values())

    kept = {"three": released["three"][-4:], "default": released["default"][-11:]}
    eventually(
        lambda: all(set(replicasets(sandbox, name, namespace)) == set(kept[name]) for name in limits),
        timeout=30,
        what="the stable and the newest old ReplicaSets left",
    )
    for name in limits:
        left = replicasets(sandbox, name, namespace)
        stable = released[name][-1]
        assert {revision: rs["spec"]["replicas"] for revision, rs in left.items()} == {
            **dict.fromkeys(kept[name][:-1], 0),
            stable: 1,
        }


def test_the_stable_replicaset_is_never_deleted_even_with_no_pods(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    """A basic canary at setWeight 100 scales the stable revision to zero while it waits; with a
    limit of 0, a superseded canary goes, the stable one stays until the release is promoted."""
    strategy = {"canary": {"steps": [{"setWeight": 100}, {"pause": {}}], "scaleDownDelaySeconds": 0}}
    apply(sandbox, limited("web", namespace, "web:1", strategy, limit=0))
    stable = wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"]

    apply(sandbox, limited("web", namespace, "web:2", strategy, limit=0))
    second = wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1, observedGeneration=2)[
        "canaryRevision"
    ]
    eventually(
        lambda: replicasets(sandbox, "web", namespace)[stable]["status"].get("replicas", 0) == 0,
        timeout=30,
        what="the stable ReplicaSet without pods",
    )

    apply(sandbox, limited("web", namespace, "web:3", strategy, limit=0))
    third = wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1, observedGeneration=3)[
        "canaryRevision"
    ]
    assert len({stable, second, third}) == 3
    assert status(sandbox, "web", namespace)["stableRevision"] == stable
    eventually(
        lambda: set(replicasets(sandbox, "web", namespace)) == {stable, third},
        timeout=30,
        what="the superseded canary deleted",
    )
    kept = replicasets(sandbox, "web", namespace)[stable]  # idle and the oldest, but stable
    assert (kept["spec"]["replicas"], kept["status"].get("replicas", 0)) == (0, 0)

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
    wait_for(sandbox, "web", namespace, phase="Healthy", stableRevision=third)
    eventually(
        lambda: set(replicasets(sandbox, "web", namespace)) == {third},
        timeout=30,
        what="the previous stable ReplicaSet deleted once no longer stable",
    )
