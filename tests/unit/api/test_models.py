"""The models accept what the API promises (the seed Component, every example) and refuse, naming
the field, every object of the invalid-object table, as the CRDs do."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from delivery.api.component import ComponentV1Alpha1, Language, RunType, WorkloadType
from delivery.api.rollout import Rollout, Strategy
from tests.invalid_objects import INVALID_OBJECTS, VALID_BASES, Invalid
from tests.unit.api.objects import examples, parse, refusals

SEED: dict[str, Any] = {
    "apiVersion": "component.luojilab.com/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "nginx"},
    "spec": {
        "workloadType": "Deployment",
        "developLanguage": "python",
        "runType": "server",
        "image": "python-demo:latest",
        "port": 8080,
    },
}


def test_the_seed_component_validates_unchanged() -> None:
    component = ComponentV1Alpha1.parse(SEED)
    assert component.spec.workload_type is WorkloadType.DEPLOYMENT
    assert component.spec.develop_language is Language.PYTHON
    assert component.spec.run_type is RunType.SERVER
    assert component.to_wire() == SEED


@pytest.mark.parametrize(("name", "obj"), examples().items())
def test_every_example_validates(name: str, obj: dict[str, Any]) -> None:
    parse(obj)


def test_there_is_an_example_of_every_kind() -> None:
    kinds = {(obj["apiVersion"], obj["kind"]) for obj in examples().values()}
    assert len(kinds) == 6  # Component in both versions, Rollout, both templates, ClusterProfile


@pytest.mark.parametrize("base", VALID_BASES, ids=lambda base: f"{base['kind']}-{base['apiVersion']}")
def test_every_base_of_the_invalid_objects_is_valid(base: dict[str, Any]) -> None:
    parse(base)


def test_the_invalid_object_table_is_large_and_has_unique_ids() -> None:
    ids = [case.id for case in INVALID_OBJECTS]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", INVALID_OBJECTS, ids=lambda case: case.id)
def test_the_models_refuse_every_invalid_object_naming_its_field(case: Invalid) -> None:
    with pytest.raises(ValidationError) as refused:
        parse(case.manifest)
    assert any(refusal.startswith(case.field) for refusal in refusals(refused.value)), refusals(refused.value)


def test_wire_types_are_strict_like_the_apiserver() -> None:
    with pytest.raises(ValidationError):
        ComponentV1Alpha1.parse({**SEED, "spec": {**SEED["spec"], "port": 8080.5}})
    with pytest.raises(ValidationError):
        ComponentV1Alpha1.parse({**SEED, "spec": {**SEED["spec"], "image": 42}})


def test_defaults_are_the_crd_defaults() -> None:
    rolling = Strategy.model_validate({"rolling": {}}).rolling
    assert rolling is not None
    assert (rolling.max_surge, rolling.max_unavailable) == ("25%", "25%")


def test_python_names_populate_the_models_too() -> None:
    rollout = Rollout.model_validate(
        {
            "api_version": "delivery.luojilab.com/v1alpha1",
            "kind": "Rollout",
            "spec": {"workload_ref": {"name": "web"}, "strategy": {"blue_green": {"active_service": "web"}}},
        }
    )
    assert rollout.to_wire()["spec"]["strategy"] == {
        "blueGreen": {
            "activeService": "web",
            "autoPromotionEnabled": True,
            "scaleDownDelaySeconds": 30,
        }
    }
