"""A Rollout's componentRef is not how a Component is released: the Component's `release` block
is. The Rollout says so in its status instead of guessing."""

from __future__ import annotations

import pytest

from delivery.rollout.plan import InvalidSpec, plan_of


def test_a_component_ref_is_refused_with_the_way_to_release_a_component() -> None:
    spec = {"componentRef": {"name": "nginx"}, "strategy": {"rolling": {}}}
    with pytest.raises(InvalidSpec, match=r"released by its own `release` block"):
        plan_of(spec)
