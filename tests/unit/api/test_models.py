"""The models accept what the API promises (the seed Component, every example) and refuse, naming
the field, every object of the invalid-object table, as the CRDs do."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from delivery.api import CUSTOM_RESOURCES
from delivery.api.component import ComponentV1Alpha1, Language, RunType, WorkloadType
from delivery.api.crdgen import crd
from delivery.api.rollout import Rollout, Strategy
from tests.invalid_objects import INVALID_OBJECTS, VALID_BASES, Invalid
from tests.unit.api.objects import examples, refusals, validate

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
    component = ComponentV1Alpha1.model_validate(SEED)
    assert component.spec.workload_type is WorkloadType.DEPLOYMENT
    assert component.spec.develop_language is Language.PYTHON
    assert component.spec.run_type is RunType.SERVER
    assert component.to_wire() == SEED


@pytest.mark.parametrize(("name", "obj"), examples().items())
def test_every_example_validates(name: str, obj: dict[str, Any]) -> None:
    validate(obj)


def test_there_is_an_example_of_every_kind() -> None:
    kinds = {(obj["apiVersion"], obj["kind"]) for obj in examples().values()}
    assert len(kinds) == 6  # Component in both versions, Rollout, both templates, ClusterProfile


@pytest.mark.parametrize("base", VALID_BASES, ids=lambda base: f"{base['kind']}-{base['apiVersion']}")
def test_every_base_of_the_invalid_objects_is_valid(base: dict[str, Any]) -> None:
    validate(base)


def test_the_invalid_object_table_is_large_and_has_unique_ids() -> None:
    ids = [case.id for case in INVALID_OBJECTS]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", INVALID_OBJECTS, ids=lambda case: case.id)
def test_the_models_refuse_every_invalid_object_naming_its_field(case: Invalid) -> None:
    with pytest.raises(ValidationError) as refused:
        validate(case.manifest)
    assert any(refusal.startswith(case.field) for refusal in refusals(refused.value)), refusals(refused.value)


STATUS: dict[str, Any] = {
    "phase": "Progressing",
    "currentStepIndex": 1,
    "weights": {"canary": 20, "stable": 80},
    "replicas": 4,
    "readyReplicas": 4,
    "abort": False,
    "conditions": [
        {
            "type": "Progressing",
            "status": "True",
            "reason": "StepStarted",
            "lastTransitionTime": "2024-05-01T10:00:00Z",
            "observedGeneration": 2,
        }
    ],
}
WITH_STATUS = {**examples()["rollout-canary-nginx.yaml Rollout"], "status": STATUS}
TYPED = (*examples().values(), *VALID_BASES, WITH_STATUS)


Path = tuple[str | int, ...]


def typed_scalars(obj: Any, schema: dict[str, Any], path: Path = ()) -> Iterator[Path]:
    """Paths in `obj` where the CRD's schema wants an integer, a number or a boolean."""
    if isinstance(obj, dict) and "properties" in schema:
        for key, value in obj.items():
            yield from typed_scalars(value, schema["properties"][key], (*path, key))
    elif isinstance(obj, list) and "items" in schema:
        for index, item in enumerate(obj):
            yield from typed_scalars(item, schema["items"], (*path, index))
    elif schema.get("type") in ("integer", "number", "boolean"):
        yield path


def as_string(obj: dict[str, Any], path: Path) -> dict[str, Any]:
    """A copy of `obj` with the value at `path` written as JSON would write it, but as a string."""
    result = copy.deepcopy(obj)
    owner: Any = result
    for key in path[:-1]:
        owner = owner[key]
    owner[path[-1]] = json.dumps(owner[path[-1]])
    return result


def schema_of(obj: dict[str, Any]) -> dict[str, Any]:
    group, version = obj["apiVersion"].split("/")
    resource = next(r for r in CUSTOM_RESOURCES if (r.group, r.kind) == (group, obj["kind"]))
    definition = next(v for v in crd(resource)["spec"]["versions"] if v["name"] == version)
    schema: dict[str, Any] = definition["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("obj", TYPED, ids=lambda obj: f"{obj['kind']}-{obj['metadata']['name']}")
def test_numbers_and_booleans_as_strings_are_refused_as_the_apiserver_does(obj: dict[str, Any]) -> None:
    paths = list(typed_scalars(obj, schema_of(obj)))
    for path in paths:
        with pytest.raises(ValidationError):
            validate(as_string(obj, path))
    if obj is WITH_STATUS:
        assert len(paths) >= 10


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
