"""A relist is diffed against what was known: what it lacks went while nobody watched."""

from __future__ import annotations

from typing import Any, cast

import pytest

from delivery.cli.main import parser
from delivery.kube.api import Kube
from delivery.kube.informer import Watch, relist_events, trimmed
from delivery.kube.kinds import CONFIG_MAP, SERVICE
from delivery.operator import Options, informers


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


def test_a_watch_pinned_to_a_namespace_is_read_there_only_whatever_the_controller_watches() -> None:
    pinned = Watch(
        CONFIG_MAP, namespace="delivery-system", field_selector="metadata.name=component-templates"
    )
    told: list[str] = []

    def handler(event_type: str, body: dict[str, Any]) -> None:
        told.append(event_type)  # never called: informers() only routes events to it

    kube = cast(Kube, object())  # never called: informers are only built here
    confined = informers(
        kube, Options(namespaces=("shop", "pay")), [(pinned, handler), (Watch(SERVICE), handler)]
    )
    assert sorted((i.watch.kind.plural, i.namespace) for i in confined) == [
        ("configmaps", "delivery-system"),
        ("services", "pay"),
        ("services", "shop"),
    ]
    everywhere = informers(kube, Options(), [(pinned, handler), (Watch(SERVICE), handler)])
    assert sorted((i.watch.kind.plural, i.namespace or "") for i in everywhere) == [
        ("configmaps", "delivery-system"),
        ("services", ""),
    ]
    assert told == []


def test_the_templates_flag_names_a_namespace_and_a_name() -> None:
    assert parser().parse_args(["run", "--templates", "ops/tpl"]).templates == ("ops", "tpl")
    assert parser().parse_args(["run"]).templates == ("delivery-system", "component-templates")
    for wrong in ("tpl", "ops/", "/tpl", "a/b/c"):
        with pytest.raises(SystemExit):
            parser().parse_args(["run", "--templates", wrong])
