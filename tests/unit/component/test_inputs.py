"""The cluster's rendering inputs: which ClusterProfile counts, and when the revision moves."""

from __future__ import annotations

import pytest

from delivery.api.profile import ClusterProfileSpec
from delivery.component.inputs import Inputs, profile_spec, templates_of
from delivery.component.render import Cluster
from delivery.component.templating import RenderError, TemplateSet


def profile(name: str, **spec: object) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": spec}


def test_an_invalid_profile_is_a_render_error_naming_it() -> None:
    with pytest.raises(RenderError, match="ClusterProfile broken"):
        profile_spec(profile("broken", loadBalancerType="f5"))
    assert profile_spec(None) == ClusterProfileSpec()


def test_the_revision_moves_with_the_profile_the_templates_and_the_served_versions() -> None:
    shipped = TemplateSet.shipped()
    base = Inputs(Cluster(), shipped)
    assert Inputs(Cluster(), TemplateSet.shipped()).revision == base.revision
    other_profile = Cluster(ClusterProfileSpec.model_validate({"ingressClass": "nginx"}))
    assert Inputs(other_profile, shipped).revision != base.revision
    assert Inputs(Cluster(served_ingress_versions=frozenset()), shipped).revision != base.revision
    config_map = {"data": {"pod.yaml.j2": "{}", "notes.txt": "ignored"}}
    replaced = templates_of(config_map)
    assert replaced.replaced == frozenset({"pod.yaml.j2"})
    assert Inputs(Cluster(), replaced).revision != base.revision
    assert templates_of(None).digest == shipped.digest
