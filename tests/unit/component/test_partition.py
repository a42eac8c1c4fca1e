"""A StatefulSet release lowers its partition step by step: the pure decision."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from delivery.api.component import Release
from delivery.component.partition import (
    Memory,
    Observed,
    Step,
    decide,
    promoted_step,
    released,
    steps_of,
)
from delivery.component.templating import RenderError
from delivery.rollout.revision import template_hash

NOW = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.UTC)
STEPS = (Step(weight=34), Step(pause_seconds=60), Step(weight=67), Step())


def observed(**changes: Any) -> Observed:
    base: dict[str, Any] = {
        "replicas": 3,
        "revision": "new",
        "exists": True,
        "memory": Memory("new", 0, NOW),
        "updated": 0,
        "ready": 3,
        "promoted": None,
        "now": NOW,
    }
    return Observed(**{**base, **changes})


def test_steps_are_read_from_the_canary_block() -> None:
    release = Release.model_validate(
        {
            "strategy": "canary",
            "canary": {"steps": [{"setWeight": 34}, {"pause": {"duration": "1m"}}, {"pause": {}}]},
        }
    )
    assert steps_of(release) == (Step(weight=34), Step(pause_seconds=60.0), Step())
    assert steps_of(Release.model_validate({"strategy": "rolling"})) == ()
    with pytest.raises(RenderError, match="setWeight and pause"):
        steps_of(
            Release.model_validate(
                {"strategy": "canary", "canary": {"steps": [{"setCanaryScale": {"replicas": 1}}]}}
            )
        )
    labelled = {"steps": [{"setWeight": 50}], "canaryMetadata": {"labels": {"role": "canary"}}}
    with pytest.raises(RenderError, match="canaryMetadata and stableMetadata need a Rollout"):
        steps_of(Release.model_validate({"strategy": "canary", "canary": labelled}))


def test_a_new_statefulset_starts_with_every_pod_updated() -> None:
    decision = decide(STEPS, observed(exists=False, memory=None))
    assert decision.partition == 0
    assert decision.memory.step == len(STEPS)


def test_a_new_revision_starts_at_the_first_step() -> None:
    decision = decide(STEPS, observed(memory=Memory("old", 4, NOW - datetime.timedelta(days=1))))
    assert (decision.partition, decision.memory) == (
        1,
        Memory("new", 0, NOW),
    )  # 34% of 3 pods: 2 -> partition 1


def test_a_weight_step_waits_for_its_pods_then_a_timed_pause_holds() -> None:
    assert decide(STEPS, observed(updated=1)).partition == 1  # one of two updated: waiting
    paused = decide(STEPS, observed(updated=2))
    assert (paused.partition, paused.memory.step, paused.requeue_after) == (1, 1, 60)
    later = NOW + datetime.timedelta(seconds=61)
    moved = decide(STEPS, observed(updated=2, memory=paused.memory, now=later))
    assert (moved.partition, moved.memory.step) == (0, 2)  # 67% of 3: all 3 pods -> partition 0


def test_a_pause_without_duration_waits_for_its_promotion() -> None:
    at_gate = Memory("new", 3, NOW)
    assert decide(STEPS, observed(updated=3, memory=at_gate)).memory.step == 3
    assert decide(STEPS, observed(updated=3, memory=at_gate, promoted=2)).memory.step == 3
    done = decide(STEPS, observed(updated=3, memory=at_gate, promoted=3))
    assert (done.partition, done.memory.step) == (0, 4)


def test_a_pause_before_any_weight_keeps_every_pod() -> None:
    assert decide((Step(),), observed()).partition == 3


def test_not_ready_pods_hold_the_step() -> None:
    assert decide(STEPS, observed(updated=2, ready=2)).memory.step == 0


def statefulset(image: str, annotations: dict[str, str] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "generation": 2, "annotations": annotations or {}},
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{"name": "app", "image": image}]}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        },
        "status": status,
    }


def test_the_status_of_an_older_template_does_not_count_as_progress() -> None:
    rendered = statefulset("db:2")
    old = Memory(template_hash(statefulset("db:1")["spec"]["template"]), 4, NOW)
    live = statefulset("db:1", old.annotations(), observedGeneration=2, updatedReplicas=3, readyReplicas=3)
    result, _again = released(rendered, live, STEPS, None, NOW)
    assert result["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 1}
    memory = Memory.from_annotations(result["metadata"]["annotations"])
    assert memory == Memory(template_hash(rendered["spec"]["template"]), 0, NOW)


def test_an_autoscaled_statefulset_counts_its_steps_in_the_pods_the_autoscaler_set() -> None:
    rendered = statefulset("db:2")
    del rendered["spec"]["replicas"]  # autoscaled: rendered without replicas
    old = Memory(template_hash(statefulset("db:1")["spec"]["template"]), 4, NOW)
    live = statefulset("db:1", old.annotations(), observedGeneration=2, readyReplicas=6)
    live["spec"]["replicas"] = 6
    result, _again = released(rendered, live, STEPS, None, NOW)
    assert "replicas" not in result["spec"]
    assert result["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 3}  # 6 - ceil(6 * 34%)


def test_the_promotion_annotation_is_a_step_number() -> None:
    assert promoted_step({"component.luojilab.com/promote": "2"}) == 2
    assert promoted_step({"component.luojilab.com/promote": "yes"}) is None
    assert promoted_step({}) is None
