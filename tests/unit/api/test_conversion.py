"""Component conversion: the seed converts, aliyun-slb becomes luoji-slb, and any valid object of
either version makes the trip to the other version and back without losing anything."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.api.component import (
    ComponentV1Alpha1,
    ComponentV1Beta1,
    Language,
    PatchOperation,
    RunType,
    ServiceType,
    ServiceTypeV1Alpha1,
    WorkloadType,
)
from delivery.api.conversion import ANNOTATION, ConversionError, convert
from delivery.api.rollout import StrategyName

V1ALPHA1 = "component.luojilab.com/v1alpha1"
V1BETA1 = "component.luojilab.com/v1beta1"
SEED: dict[str, Any] = {
    "apiVersion": V1ALPHA1,
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


def test_the_seed_converts_to_v1beta1_changing_only_its_api_version() -> None:
    converted = convert(SEED, V1BETA1)
    assert converted == {**SEED, "apiVersion": V1BETA1}
    ComponentV1Beta1.model_validate(converted)
    assert convert(converted, V1ALPHA1) == SEED


def test_aliyun_slb_becomes_luoji_slb_and_its_instance_type_waits_in_the_annotation() -> None:
    alpha = copy.deepcopy(SEED)
    alpha["spec"]["svc"] = {"type": "aliyun-slb", "slbSpec": "slb.s1.small", "ports": [{"port": 80}]}
    beta = convert(alpha, V1BETA1)
    assert beta["spec"]["svc"] == {"type": "luoji-slb", "ports": [{"port": 80}]}
    assert json.loads(beta["metadata"]["annotations"][ANNOTATION]) == {"svc": {"slbSpec": "slb.s1.small"}}
    ComponentV1Beta1.model_validate(beta)
    assert convert(beta, V1ALPHA1) == alpha
    assert alpha["spec"]["svc"]["type"] == "aliyun-slb"  # the input is not changed


def test_v1beta1_fields_survive_a_v1alpha1_client_that_does_not_know_them() -> None:
    beta = {**copy.deepcopy(SEED), "apiVersion": V1BETA1}
    beta["spec"]["release"] = {"strategy": "canary"}
    beta["metadata"]["annotations"] = {"team": "shop"}
    alpha = convert(beta, V1ALPHA1)
    assert "release" not in alpha["spec"]
    ComponentV1Alpha1.model_validate(alpha)
    alpha["spec"]["image"] = "python-demo:2"  # the v1alpha1 client edits what it knows
    back = convert(alpha, V1BETA1)
    assert back["spec"]["release"] == {"strategy": "canary"}
    assert back["spec"]["image"] == "python-demo:2"
    assert back["metadata"]["annotations"] == {"team": "shop"}


def test_a_stashed_field_whose_parent_is_gone_is_dropped() -> None:
    alpha = copy.deepcopy(SEED)
    alpha["spec"]["svc"] = {"type": "aliyun-slb", "slbSpec": "slb.s1.small"}
    beta = convert(alpha, V1BETA1)
    del beta["spec"]["svc"]  # a v1beta1 client removed the Service
    assert convert(beta, V1ALPHA1) == SEED


def test_the_annotation_restores_only_fields_the_other_version_lacks() -> None:
    beta = {**copy.deepcopy(SEED), "apiVersion": V1BETA1}
    beta["metadata"]["annotations"] = {
        ANNOTATION: json.dumps({"image": "evil:1", "svc": {"type": "NodePort"}})
    }
    assert convert(beta, V1ALPHA1)["spec"] == SEED["spec"]


@pytest.mark.parametrize("annotation", ["{not json", "[1, 2]"])
def test_a_broken_annotation_is_a_conversion_error(annotation: str) -> None:
    alpha = copy.deepcopy(SEED)
    alpha["metadata"]["annotations"] = {ANNOTATION: annotation}
    with pytest.raises(ConversionError, match=ANNOTATION):
        convert(alpha, V1BETA1)


@pytest.mark.parametrize(
    ("obj", "api_version"),
    [
        (SEED, "component.luojilab.com/v2"),
        ({**SEED, "apiVersion": "apps/v1"}, V1BETA1),
        ({**SEED, "kind": "Rollout"}, V1BETA1),
    ],
)
def test_other_versions_and_kinds_are_refused(obj: dict[str, Any], api_version: str) -> None:
    with pytest.raises(ConversionError):
        convert(obj, api_version)


def test_the_same_version_is_returned_as_it_is() -> None:
    assert convert(SEED, V1ALPHA1) == SEED


# Objects of either version, valid by construction (each one is also checked against its model).

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
ports = st.integers(min_value=1, max_value=65535)


def _optional(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


def services(types: type[ServiceType] | type[ServiceTypeV1Alpha1]) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, Any] = {
        "ports": st.lists(
            _optional({"port": ports}, {"targetPort": ports, "protocol": st.sampled_from(["TCP", "UDP"])}),
            min_size=1,
            max_size=3,
            unique_by=lambda port: port["port"],
        )
    }
    if types is ServiceTypeV1Alpha1:
        optional["slbSpec"] = st.sampled_from(["slb.s1.small", "slb.s2.medium"])
    return _optional({"type": st.sampled_from([member.value for member in types])}, optional)


common_spec: dict[str, Any] = {
    "workloadType": st.sampled_from(list(WorkloadType)).map(str),
    "developLanguage": st.sampled_from(list(Language)).map(str),
    "runType": st.just(RunType.SERVER.value),
    "image": st.builds("{}:{}".format, names, st.integers(0, 999)),
    "port": ports,
}
optional_spec: dict[str, Any] = {
    "replicas": st.integers(min_value=0, max_value=50),
    "resources": st.just({"requests": {"cpu": "100m"}}),
    "env": st.lists(
        st.fixed_dictionaries({"name": names.map(str.upper), "value": st.text(max_size=5)}),
        max_size=3,
        unique_by=lambda env: env["name"],
    ),
    "probes": _optional(
        {}, {"readiness": st.just({"path": "/healthz"}), "liveness": st.just({"command": ["true"]})}
    ),
    "ingress": _optional({"host": names.map(lambda name: f"{name}.example.com")}, {"class": names}),
    "autoscaling": _optional(
        {"maxReplicas": st.integers(5, 20)},
        {
            "minReplicas": st.integers(1, 5),
            "cpuUtilization": st.integers(1, 200),
            "memoryUtilization": st.integers(1, 200),
            "metrics": st.just([{"type": "External", "external": {"metric": {"name": "queue"}}}]),
        },
    ).filter(lambda block: {"cpuUtilization", "memoryUtilization", "metrics"} & set(block)),
}
releases = st.one_of(
    st.fixed_dictionaries({"strategy": st.sampled_from(list(StrategyName)).map(str)}),
    st.fixed_dictionaries(
        {
            "strategy": st.just("canary"),
            "canary": st.fixed_dictionaries(
                {"steps": st.lists(st.integers(0, 100).map(lambda weight: {"setWeight": weight}), min_size=1)}
            ),
        }
    ),
)
overrides = st.lists(
    st.one_of(
        _optional(
            {"kind": st.just("Deployment"), "strategicMerge": st.just({"spec": {"paused": True}})},
            {"name": names},
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("Service"),
                "jsonPatch": st.just(
                    [{"op": PatchOperation.ADD.value, "path": "/metadata/labels/a", "value": "b"}]
                ),
            }
        ),
    ),
    min_size=1,
    max_size=2,
)
metadata = _optional(
    {"name": names, "namespace": names},
    {
        "annotations": st.dictionaries(names, st.text(max_size=8), min_size=1, max_size=2),
        "labels": st.just({"app": "x"}),
    },
)
status = _optional(
    {"observedGeneration": st.integers(0, 9)},
    {
        "conditions": st.just(
            [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Rendered",
                    "lastTransitionTime": "2024-05-01T10:00:00Z",
                }
            ]
        )
    },
)


def _scalable(spec: dict[str, Any]) -> bool:
    """Autoscaling only where the rules allow it: not beside replicas, not on a DaemonSet."""
    return "autoscaling" not in spec or ("replicas" not in spec and spec["workloadType"] != "DaemonSet")


def components(api_version: str) -> st.SearchStrategy[dict[str, Any]]:
    alpha = api_version == V1ALPHA1
    spec_optional = {**optional_spec, "svc": services(ServiceTypeV1Alpha1 if alpha else ServiceType)}
    if not alpha:
        spec_optional |= {"release": releases, "overrides": overrides}
    return _optional(
        {
            "apiVersion": st.just(api_version),
            "kind": st.just("Component"),
            "metadata": metadata,
            "spec": _optional(common_spec, spec_optional).filter(_scalable),
        },
        {"status": status},
    )


@settings(max_examples=60, deadline=None)
@given(components(V1ALPHA1))
def test_v1alpha1_to_v1beta1_and_back_loses_nothing(alpha: dict[str, Any]) -> None:
    ComponentV1Alpha1.model_validate(alpha)
    beta = convert(alpha, V1BETA1)
    ComponentV1Beta1.model_validate(beta)
    assert convert(beta, V1ALPHA1) == alpha


@settings(max_examples=60, deadline=None)
@given(components(V1BETA1))
def test_v1beta1_to_v1alpha1_and_back_loses_nothing(beta: dict[str, Any]) -> None:
    ComponentV1Beta1.model_validate(beta)
    alpha = convert(beta, V1ALPHA1)
    ComponentV1Alpha1.model_validate(alpha)
    assert convert(alpha, V1BETA1) == beta
