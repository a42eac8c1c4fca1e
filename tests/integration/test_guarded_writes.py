"""A decision is written only onto the version it was taken from: the spec changed between the
decision and its writes makes the controller decide again, never report the old decision.

A failpoint holds the controller's first write (the scale-up of a promote) while the test
changes the image; the promote's command annotation is then consumed with a resourceVersion
precondition, which fails, and the reconcile is taken again on the new spec (where the promote
is taken by the new release instead). Before, the
annotation was removed unconditionally and its new resourceVersion guarded the status, so the
old decision's Event and status landed on the newer spec.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import PROMOTE, apply, event_objects, get, in_shard, rollout, wait_for
from tests.waiting import eventually

pytestmark = pytest.mark.faults

SHARD = "guarded"
HOLD = 4.0  # seconds the failpoint holds the write: time enough for the test's change


def test_a_spec_changed_between_decision_and_write_is_decided_again(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    strategy = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": 0}}
    web = in_shard(rollout("web", namespace, "web:1", strategy, replicas=2), SHARD)
    first = Controller.of_shard(sandbox, tmp_path / "first.log", SHARD, namespace=namespace)
    first.start()
    try:
        apply(sandbox, web)
        wait_for(sandbox, "web", namespace, phase="Healthy")
        web["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
        apply(sandbox, web)
        wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)
    finally:
        first.stop()
    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=true")
    before = {event["metadata"]["name"] for event in event_objects(sandbox, "web", namespace)}

    failpoint = {"DELIVERY_FAILPOINTS": f"write:1=sleep:{HOLD}"}
    held = Controller.of_shard(sandbox, tmp_path / "held.log", SHARD, namespace=namespace, env=failpoint)
    held.start()
    try:
        eventually(
            lambda: "failpoint write:1=sleep" in held.tail() or None, timeout=30, what="the write held"
        )
        web["spec"]["template"]["spec"]["containers"][0]["image"] = "web:3"
        patch = {"spec": {"template": web["spec"]["template"]}}
        changed = json.loads(
            sandbox.kubectl_run(
                "patch",
                "rollout",
                "web",
                "-n",
                namespace,
                "--type=merge",
                "-p",
                json.dumps(patch),
                "-o",
                "json",
            )
        )
        changed_at = int(changed["metadata"]["resourceVersion"])
        third = template_hash(web["spec"]["template"])
        # Decided again on the new spec: the new revision's release, the promote (still there,
        # never consumed by the stale decision) taken by its first step, then its pause.
        done = wait_for(
            sandbox, "web", namespace, timeout=60, phase="Paused", currentStepIndex=1, canaryRevision=third
        )
        annotations = get(sandbox, "rollout", "web", namespace)["metadata"].get("annotations") or {}
        assert PROMOTE not in annotations
        assert (
            done["observedGeneration"] == get(sandbox, "rollout", "web", namespace)["metadata"]["generation"]
        )
        assert "deciding again" in held.log.read_text()
        told = [
            event
            for event in event_objects(sandbox, "web", namespace)
            if event["metadata"]["name"] not in before
        ]
        assert told  # the new release was reported
        stale = [
            (event["reason"], event["involvedObject"]["resourceVersion"])
            for event in told
            if int(event["involvedObject"]["resourceVersion"]) < changed_at
        ]
        assert stale == []  # no transition reported from the version the change replaced
    finally:
        held.stop()
