"""A relist is diffed against what was known: what it lacks went while nobody watched."""

from __future__ import annotations

from typing import Any

from delivery.kube.informer import Watch, relist_events, trimmed
from delivery.kube.kinds import SERVICE


def body(name: str, version: int, namespace: str = "shop") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": str(version)}}


def test_a_first_listing_adds_everything() -> None:
    events = relist_events({}, [body("web", 1), body("api", 2)])
    assert [(kind, b["metadata"]["name"]) for kind, b in events] == [("ADDED", "web"), ("ADDED", "api")]


def test_what_a_relist_lacks_is_deleted_and_what_it_has_is_modified() -> None:
    known = {("shop", "web"): body("web", 1), ("shop", "gone"): body("gone", 2)}
    events = relist_events(known, [body("web", 5), body("new", 6)])
    assert [(kind, b["metadata"]["name"]) for kind, b in events] == [
        ("MODIFIED", "web"),
        ("ADDED", "new"),
        ("DELETED", "gone"),
    ]
    deleted = next(b for kind, b in events if kind == "DELETED")
    assert deleted is known["shop", "gone"]  # the last body known, so its owner can be found


def test_the_same_name_in_another_namespace_is_another_object() -> None:
    known = {("a", "web"): body("web", 1, "a")}
    events = relist_events(known, [body("web", 3, "b")])
    assert [(kind, b["metadata"]["namespace"]) for kind, b in events] == [("ADDED", "b"), ("DELETED", "a")]


def test_managed_fields_are_not_cached_and_the_body_is_not_changed_in_place() -> None:
    original = {"metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}]}, "spec": {}}
    kept = trimmed(original)
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["name"] == "web"
    assert "managedFields" in original["metadata"]
    plain = {"metadata": {"name": "web"}}
    assert trimmed(plain) is plain


def test_a_watch_sends_only_the_selectors_it_has() -> None:
    assert Watch(SERVICE).query() == {}
    assert Watch(SERVICE, label_selector="app").query() == {"labelSelector": "app"}
    assert Watch(SERVICE, field_selector="metadata.name=x").query() == {"fieldSelector": "metadata.name=x"}
