"""A Rollout's plan is parsed once per generation, and again whenever what it is parsed from moves."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.rollout.plan import InvalidSpec, Plans

SPEC = {
    "replicas": 2,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "web:1"}]},
    },
    "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}]}},
}


def rollout(generation: int, uid: str = "u1", **spec: Any) -> dict[str, Any]:
    metadata = {"namespace": "ns", "name": "web", "uid": uid, "generation": generation}
    return {"metadata": metadata, "spec": {**SPEC, **spec}}


def test_the_same_generation_reuses_the_plan() -> None:
    plans = Plans()
    first = plans.of(rollout(1))
    assert plans.of(rollout(1)) is first


def test_a_new_generation_a_new_uid_or_a_forgotten_rollout_parses_again() -> None:
    plans = Plans()
    first = plans.of(rollout(1))
    changed = plans.of(rollout(2, replicas=5))
    assert changed is not first
    assert changed.replicas == 5
    recreated = plans.of(rollout(2, uid="u2"))
    assert recreated is not changed
    plans.forget(("ns", "web"))
    assert plans.of(rollout(2, uid="u2")) is not recreated


def test_a_referenced_deployment_is_part_of_what_the_plan_is_parsed_from() -> None:
    plans = Plans()
    spec = {key: value for key, value in SPEC.items() if key not in ("template", "selector")}
    body = {
        **rollout(1),
        "spec": {**spec, "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
    }
    deployment = {
        "metadata": {"resourceVersion": "7"},
        "spec": {"selector": SPEC["selector"], "template": SPEC["template"]},
    }
    first = plans.of(body, deployment)
    assert plans.of(body, deployment) is first
    moved = {**deployment, "metadata": {"resourceVersion": "8"}}
    assert plans.of(body, moved) is not first


def test_an_invalid_spec_raises_at_every_reconcile() -> None:
    plans = Plans()
    body = rollout(1, strategy={"canary": {"maxSurge": 0, "maxUnavailable": 0}})
    for _ in range(2):
        with pytest.raises(InvalidSpec):
            plans.of(body)
