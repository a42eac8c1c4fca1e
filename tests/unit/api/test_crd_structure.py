"""The generated CRDs are structural and bounded, so the apiserver accepts them and their CEL rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from delivery.api import CUSTOM_RESOURCES
from delivery.api.common import Model
from delivery.api.crdgen import UnsupportedSchema, crd, main, render, structural
from delivery.api.definition import CATEGORY, CustomResource

CRDS = {resource.kind: crd(resource) for resource in CUSTOM_RESOURCES}
_FREE = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}.*")


def all_nodes() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind, definition in CRDS.items():
        for version in definition["spec"]["versions"]:
            yield from nodes(version["schema"]["openAPIV3Schema"], f"{kind}/{version['name']}")


def test_every_node_is_structural() -> None:
    for path, node in all_nodes():
        assert not {"$ref", "$defs", "title", "anyOf", "allOf", "oneOf", "const"} & node.keys(), path
        assert "type" in node or any(node.get(marker) for marker in _FREE), path
        assert node.get("additionalProperties") is not False, path


def test_lists_and_strings_are_bounded_so_cel_costs_can_be_estimated() -> None:
    for path, node in all_nodes():
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "string" and not path.endswith((".apiVersion", ".kind")):
            assert {"maxLength", "enum", "format"} & node.keys(), path


def test_every_cel_rule_has_a_message() -> None:
    rules = [rule for _, node in all_nodes() for rule in node.get("x-kubernetes-validations", [])]
    assert len(rules) > 20
    for rule in rules:
        assert rule["message"]
        assert rule["rule"]


def test_int_or_string_fields_are_marked() -> None:
    rolling = CRDS["Rollout"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rolling = rolling["properties"]["spec"]["properties"]["strategy"]["properties"]["rolling"]
    assert rolling["properties"]["maxSurge"] == {
        "x-kubernetes-int-or-string": True,
        "pattern": "^[0-9]{1,3}%$",  # the string's format; OpenAPI applies it to strings only
        "default": "25%",
        "description": "Pods above the desired replicas during the update.",
    }


@pytest.mark.parametrize("resource", CUSTOM_RESOURCES, ids=lambda resource: resource.kind)
def test_names_categories_and_status(resource: CustomResource) -> None:
    spec = CRDS[resource.kind]["spec"]
    assert spec["names"]["categories"] == [CATEGORY]
    assert spec["names"]["shortNames"]
    assert [version["storage"] for version in spec["versions"]].count(True) == 1
    for version in spec["versions"]:
        assert version["subresources"]["status"] == {}
        assert version["additionalPrinterColumns"][-1]["name"] == "Age"


def test_short_names_of_the_issue() -> None:
    assert CRDS["Component"]["spec"]["names"]["shortNames"] == ["comp"]
    assert CRDS["Rollout"]["spec"]["names"]["shortNames"] == ["ro"]


def test_rollout_columns_and_scale_subresource() -> None:
    (version,) = CRDS["Rollout"]["spec"]["versions"]
    assert [column["name"] for column in version["additionalPrinterColumns"]] == [
        "Phase",
        "Step",
        "Weight",
        "Stable",
        "Canary",
        "Age",
    ]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.hpaReplicas",  # the pods of .status.selector, capped at spec
        "labelSelectorPath": ".status.selector",
    }


def test_component_is_served_in_two_versions_and_converted_by_webhook() -> None:
    spec = CRDS["Component"]["spec"]
    assert [(v["name"], v["served"], v["storage"]) for v in spec["versions"]] == [
        ("v1alpha1", True, False),
        ("v1beta1", True, True),
    ]
    assert [c["name"] for c in spec["versions"][0]["additionalPrinterColumns"]] == [
        "Workload",
        "Language",
        "Image",
        "Ready",
        "Age",
    ]
    assert spec["conversion"] == {
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {
                "service": {
                    "name": "delivery-webhook",
                    "namespace": "delivery-system",
                    "path": "/convert",
                    "port": 443,
                }
            },
        },
    }


def test_one_file_per_crd_saying_it_is_generated() -> None:
    files = render()
    assert sorted(files) == [
        "analysistemplates.yaml",
        "clusteranalysistemplates.yaml",
        "clusterprofiles.yaml",
        "components.yaml",
        "rollouts.yaml",
    ]
    for content in files.values():
        assert content.startswith("# Generated by `python -m delivery.api.crdgen`")


class Mixed(Model):
    value: int | str


def test_a_model_without_a_structural_schema_is_refused_with_its_path() -> None:
    schema = Mixed.model_json_schema(by_alias=True)
    with pytest.raises(UnsupportedSchema, match=r"\.value: anyOf"):
        structural(schema, {})


def test_check_fails_on_stale_files_and_write_fixes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--directory", str(tmp_path)]) == 0
    rollouts = tmp_path / "rollouts.yaml"
    generated = rollouts.read_text()
    rollouts.write_text(generated.replace("shortNames:\n    - ro", "shortNames:\n    - r"))
    (tmp_path / "gone.yaml").write_text(generated)  # generated once, from a model that is gone
    (tmp_path / "mine.yaml").write_text("kind: List\n")  # not generated: left alone
    assert main(["--check", "--directory", str(tmp_path)]) == 1
    diff = capsys.readouterr().out
    assert "-    - r\n+    - ro" in diff
    assert "gone.yaml" in diff
    assert "mine.yaml" not in diff
    assert main(["--directory", str(tmp_path)]) == 0
    assert main(["--check", "--directory", str(tmp_path)]) == 0
    assert rollouts.read_text() == generated
    assert not (tmp_path / "gone.yaml").exists()
    assert (tmp_path / "mine.yaml").exists()
