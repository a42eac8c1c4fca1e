"""Adoption: existing objects are taken over by their metadata only, until the Component changes;
immutable selectors are kept; objects another controller owns are refused."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.component.adoption import (
    ADOPTED_ANNOTATION,
    Conflict,
    desired,
    object_id,
    replacement,
)
from delivery.component.drift import HASH_ANNOTATION
from delivery.component.render import Cluster, render
from delivery.component.templating import TemplateSet
from tests.unit.component.test_render import component

UID = "uid-1"
RENDERED = render(component(), Cluster(), TemplateSet.shipped()).objects


def legacy_deployment(owner: str | None = None, adopted_at: int | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "nginx",
        "namespace": "shop",
        "resourceVersion": "5",
        "annotations": {},
    }
    if owner:
        metadata["ownerReferences"] = [
            {"kind": "Component", "name": "nginx", "uid": owner, "controller": True}
        ]
    if adopted_at is not None:
        metadata["annotations"][ADOPTED_ANNOTATION] = str(adopted_at)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"run": "legacy"}},
            "template": {
                "metadata": {"labels": {"run": "legacy"}},
                "spec": {"containers": [{"name": "web", "image": "legacy:1"}]},
            },
        },
        "status": {"replicas": 3},
    }


def by_id(live: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {object_id(live): live}


def test_nothing_live_everything_rendered_in_full() -> None:
    wanted = desired(RENDERED, {}, UID, 1)
    assert [item.obj["kind"] for item in wanted] == ["Deployment", "Service", "Ingress"]
    assert not any(item.adopting or item.replacing for item in wanted)
    assert all(HASH_ANNOTATION in item.obj["metadata"]["annotations"] for item in wanted)
    assert wanted[0].obj["spec"] == RENDERED[0]["spec"]


def test_an_unowned_object_is_adopted_by_its_metadata_only() -> None:
    adopted = desired(RENDERED, by_id(legacy_deployment()), UID, 4)[0]
    assert adopted.adopting
    assert "spec" not in adopted.obj
    metadata = adopted.obj["metadata"]
    assert metadata["ownerReferences"][0]["uid"] == UID
    assert metadata["labels"]["component.luojilab.com/name"] == "nginx"
    assert metadata["annotations"][ADOPTED_ANNOTATION] == "4"


def test_an_adopted_object_stays_untouched_while_the_component_keeps_its_generation() -> None:
    kept = desired(RENDERED, by_id(legacy_deployment(UID, adopted_at=4)), UID, 4)[0]
    assert (kept.adopting, kept.replacing, "spec" in kept.obj) == (False, False, False)


def test_the_first_change_after_adoption_renders_in_full_on_the_live_selector() -> None:
    wanted = desired(RENDERED, by_id(legacy_deployment(UID, adopted_at=4)), UID, 5)
    workload, service = wanted[0], wanted[1]
    assert workload.replacing
    assert workload.obj["spec"]["selector"] == {"matchLabels": {"run": "legacy"}}
    assert workload.obj["spec"]["template"]["metadata"]["labels"]["run"] == "legacy"
    assert workload.obj["spec"]["template"]["spec"]["containers"][0]["image"] == "python-demo:latest"
    assert service.obj["spec"]["selector"] == {"run": "legacy"}  # the pods keep their traffic


def test_an_object_another_controller_owns_is_refused() -> None:
    with pytest.raises(Conflict, match="controlled by Component nginx"):
        desired(RENDERED, by_id(legacy_deployment("someone-else")), UID, 1)


def test_a_replacement_is_the_desired_spec_with_cleared_field_managers() -> None:
    live = legacy_deployment(UID, adopted_at=4)
    live["metadata"]["annotations"]["note"] = "kept"
    workload = desired(RENDERED, by_id(live), UID, 5)[0].obj
    body = replacement(workload, live)
    assert body["spec"] == workload["spec"]
    assert "status" not in body
    assert body["metadata"]["resourceVersion"] == "5"  # guarded: refused if the object moved meanwhile
    assert body["metadata"]["managedFields"] == [{}]
    assert ADOPTED_ANNOTATION not in body["metadata"]["annotations"]
    assert (
        HASH_ANNOTATION not in body["metadata"]["annotations"]
    )  # so the apply that follows is never skipped
    assert body["metadata"]["annotations"]["note"] == "kept"
