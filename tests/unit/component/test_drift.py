"""No write when the live object holds the render: what counts as holding, and what does not."""

from __future__ import annotations

import copy
from typing import Any

from delivery.component.drift import HASH_ANNOTATION, holds, needs_apply, stamped


def deployment(**container: Any) -> dict[str, Any]:
    app = {"name": "app", "image": "web:1", "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{**app, **container}]}}},
    }


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the apiserver returns: defaults added, quantities canonical, others' fields beside ours."""
    live = copy.deepcopy(obj)
    live["metadata"].update(uid="u", resourceVersion="7", labels={**live["metadata"]["labels"], "team": "x"})
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    app = live["spec"]["template"]["spec"]["containers"][0]
    app["resources"] = {"requests": {"cpu": "500m", "memory": "1Gi"}}
    app["terminationMessagePath"] = "/dev/termination-log"
    live["spec"]["template"]["spec"]["containers"].append({"name": "injected-sidecar", "image": "proxy:1"})
    live["status"] = {"replicas": 2}
    return live


def test_a_stored_object_holds_its_render_despite_defaults_and_canonical_quantities() -> None:
    desired = stamped(deployment())
    assert not needs_apply(desired, as_stored(desired))


def test_an_edited_field_does_not_hold() -> None:
    desired = stamped(deployment())
    live = as_stored(desired)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "hacked:1"
    assert needs_apply(desired, live)
    live = as_stored(desired)
    live["spec"]["replicas"] = 5
    assert needs_apply(desired, live)


def test_a_removed_field_changes_the_hash() -> None:
    with_env = stamped(deployment(env=[{"name": "A", "value": "1"}]))
    without = stamped(deployment())
    assert (
        with_env["metadata"]["annotations"][HASH_ANNOTATION]
        != without["metadata"]["annotations"][HASH_ANNOTATION]
    )
    assert needs_apply(without, as_stored(with_env))  # the env var is still there: apply to remove it


def test_stamping_is_stable() -> None:
    assert stamped(stamped(deployment())) == stamped(deployment())


def test_empty_values_the_apiserver_omits_still_hold() -> None:
    assert holds({"a": 1}, {"a": 1, "b": "", "c": [], "d": False, "e": {}})
    assert not holds({"a": 1}, {"b": "x"})


def test_lists_without_a_merge_key_must_match_in_full() -> None:
    assert holds({"args": ["a", "b"]}, {"args": ["a", "b"]})
    assert not holds({"args": ["a", "b", "c"]}, {"args": ["a", "b"]})


def test_quantities_compare_by_value_only_under_resources() -> None:
    assert holds({"resources": {"limits": {"cpu": "1000m"}}}, {"resources": {"limits": {"cpu": "1"}}})
    assert holds(
        {"resources": {"limits": {"memory": "2Gi"}}}, {"resources": {"limits": {"memory": "2048Mi"}}}
    )
    assert not holds(
        {"resources": {"limits": {"memory": "2G"}}}, {"resources": {"limits": {"memory": "2Gi"}}}
    )
    assert not holds({"env": [{"name": "N", "value": "1000m"}]}, {"env": [{"name": "N", "value": "1"}]})
