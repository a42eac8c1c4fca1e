"""The API through a real apiserver: the CRDs' schemas and CEL rules refuse bad input with a
message naming the field, Components convert between versions through the controller's
webhook, examples apply, and kubectl shows the printer columns."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from delivery.api.conversion import convert
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.invalid_objects import INVALID_OBJECTS, Invalid
from tests.unit.api.test_conversion import SEED, V1ALPHA1, V1BETA1, components

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
names = (f"gen-{n}" for n in itertools.count())


def kubectl(sandbox: Sandbox, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(sandbox.kubectl), f"--kubeconfig={sandbox.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def read(sandbox: Sandbox, resource: str, name: str, namespace: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        sandbox.kubectl_run("get", resource, name, "-n", namespace, "-o", "json")
    )
    return document


@pytest.mark.matrix
@pytest.mark.parametrize("case", INVALID_OBJECTS, ids=lambda case: case.id)
def test_invalid_objects_are_refused_naming_the_field(sandbox: Sandbox, crds: None, case: Invalid) -> None:
    applied = kubectl(sandbox, "apply", "-n", "default", "-f", "-", stdin=json.dumps(case.manifest))
    assert applied.returncode != 0, f"{case.id} was accepted"
    assert case.field in applied.stderr, applied.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_every_example_applies(
    sandbox: Sandbox, namespace: str, controller: Controller, example: Path
) -> None:
    applied = kubectl(sandbox, "apply", "-n", namespace, "-f", str(example), stdin="")
    assert applied.returncode == 0, applied.stderr


@pytest.mark.matrix
def test_the_seed_component_applies_unchanged_and_reads_back_as_v1beta1(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    applied = kubectl(sandbox, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(SEED))
    assert applied.returncode == 0, applied.stderr
    beta = read(sandbox, "components.v1beta1.component.luojilab.com", "nginx", namespace)
    assert beta["apiVersion"] == V1BETA1
    assert beta["spec"] == SEED["spec"]
    alpha = read(sandbox, "components.v1alpha1.component.luojilab.com", "nginx", namespace)
    assert alpha["apiVersion"] == V1ALPHA1
    assert alpha["spec"] == SEED["spec"]


def test_aliyun_slb_reads_back_as_luoji_slb_and_round_trips(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    old = copy.deepcopy(SEED)
    old["metadata"]["name"] = "shop"
    old["spec"]["svc"] = {"type": "aliyun-slb", "slbSpec": "slb.s2.small"}
    applied = kubectl(sandbox, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(old))
    assert applied.returncode == 0, applied.stderr
    beta = read(sandbox, "components.v1beta1.component.luojilab.com", "shop", namespace)
    assert beta["spec"]["svc"]["type"] == "luoji-slb"
    alpha = read(sandbox, "components.v1alpha1.component.luojilab.com", "shop", namespace)
    assert alpha["spec"]["svc"] == old["spec"]["svc"]


@pytest.mark.matrix
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(alpha=components(V1ALPHA1))
def test_generated_v1alpha1_components_round_trip_through_the_apiserver(
    sandbox: Sandbox, namespace: str, controller: Controller, alpha: dict[str, Any]
) -> None:
    alpha = {key: value for key, value in alpha.items() if key != "status"}
    if "autoscaling" in alpha["spec"]:
        # The apiserver defaults an absent minReplicas to 1 (the CRD's default) in either version,
        # which the pure conversion cannot know: the object sent is the one the apiserver keeps.
        alpha["spec"]["autoscaling"] = {"minReplicas": 1, **alpha["spec"]["autoscaling"]}
    name = next(names)
    alpha["metadata"] = {**alpha["metadata"], "name": name, "namespace": namespace}
    applied = kubectl(sandbox, "create", "-n", namespace, "-f", "-", stdin=json.dumps(alpha))
    assert applied.returncode == 0, applied.stderr
    beta = read(sandbox, "components.v1beta1.component.luojilab.com", name, namespace)
    assert beta["spec"] == convert(alpha, V1BETA1)["spec"]
    back = read(sandbox, "components.v1alpha1.component.luojilab.com", name, namespace)
    assert back["spec"] == alpha["spec"]


def test_printer_columns(sandbox: Sandbox, namespace: str, controller: Controller) -> None:
    for manifest in (yaml.safe_dump(SEED), (EXAMPLES[0].parent / "rollout-rolling.yaml").read_text()):
        applied = kubectl(sandbox, "apply", "-n", namespace, "-f", "-", stdin=manifest)
        assert applied.returncode == 0, applied.stderr
    components_table = sandbox.kubectl_run("get", "comp", "-n", namespace)
    rollouts_table = sandbox.kubectl_run("get", "ro", "-n", namespace)
    assert components_table.split("\n")[0].split() == [
        "NAME",
        "WORKLOAD",
        "LANGUAGE",
        "IMAGE",
        "READY",
        "AGE",
    ]
    assert "nginx" in components_table
    assert "No resources found" in rollouts_table or rollouts_table.split()[:6] == [
        "NAME",
        "PHASE",
        "STEP",
        "WEIGHT",
        "STABLE",
        "CANARY",
    ]
