"""The Component examples render: every manifest under examples/ that is a Component, with the
example ClusterProfile, and the example template ConfigMap in place of the shipped pod template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery.api.conversion import convert
from delivery.api.profile import ClusterProfile
from delivery.component.render import Cluster, render
from delivery.component.templating import TemplateSet

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
COMPONENTS = sorted(EXAMPLES.glob("component*.yaml"))


def load(path: Path, kind: str = "Component") -> dict[str, Any]:
    """The example's object of `kind` (an example also carries what it needs, a Secret, say)."""
    found: dict[str, Any] = next(obj for obj in yaml.safe_load_all(path.read_text()) if obj["kind"] == kind)
    return found


def as_stored(path: Path) -> dict[str, Any]:
    component = convert(load(path), "component.luojilab.com/v1beta1")
    component["metadata"].update(namespace="shop", uid="uid-1")
    return component


@pytest.mark.parametrize("path", COMPONENTS, ids=[path.name for path in COMPONENTS])
def test_every_example_component_renders_with_the_example_profile(path: Path) -> None:
    profile = ClusterProfile.model_validate(load(EXAMPLES / "clusterprofile.yaml", "ClusterProfile")).spec
    rendered = render(as_stored(path), Cluster(profile), TemplateSet.shipped())
    assert rendered.workload["metadata"]["name"] == load(path)["metadata"]["name"]
    image = rendered.workload["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(("registry.example.com/", "registry.idc1.example.com/apps/"))


def test_the_example_template_configmap_replaces_the_pod_template() -> None:
    configmap = load(EXAMPLES / "component-templates" / "configmap.yaml", "ConfigMap")
    templates = TemplateSet.shipped().replace(
        configmap["data"], "ConfigMap delivery-system/component-templates"
    )
    rendered = render(as_stored(EXAMPLES / "component-minimal.yaml"), Cluster(), templates)
    pod = rendered.workload["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001}
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["containers"][0]["readinessProbe"]["tcpSocket"] == {"port": 8080}
