"""Strategic-merge-like patches: mappings merge, keyed lists merge by item, `null` and
`$patch: delete` remove, other lists are replaced."""

from __future__ import annotations

from delivery.component.overrides import strategic_merge


def test_mappings_merge_and_null_removes_a_key() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}}
    assert strategic_merge(target, {"b": {"c": 5, "d": None}, "e": 6}) == {"a": 1, "b": {"c": 5}, "e": 6}
    assert target == {"a": 1, "b": {"c": 2, "d": 3}}  # untouched


def test_lists_keyed_by_name_merge_item_by_item() -> None:
    containers = [{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}]
    patch = [{"name": "side", "image": "s:2"}, {"name": "new", "image": "n:1"}]
    assert strategic_merge(containers, patch) == [
        {"name": "app", "image": "a:1"},
        {"name": "side", "image": "s:2"},
        {"name": "new", "image": "n:1"},
    ]


def test_an_item_marked_delete_is_removed() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert strategic_merge(env, [{"name": "A", "$patch": "delete"}]) == [{"name": "B", "value": "2"}]


def test_service_ports_merge_by_name_and_container_ports_by_number() -> None:
    ports = [{"name": "http", "port": 80}, {"name": "grpc", "port": 90}]
    assert strategic_merge(ports, [{"name": "grpc", "port": 91}])[1] == {"name": "grpc", "port": 91}
    assert strategic_merge([{"containerPort": 80}], [{"containerPort": 80, "protocol": "UDP"}]) == [
        {"containerPort": 80, "protocol": "UDP"}
    ]


def test_lists_without_a_merge_key_are_replaced() -> None:
    tolerations = [{"key": "a", "operator": "Exists"}]
    assert strategic_merge(tolerations, [{"key": "b", "operator": "Exists"}]) == [
        {"key": "b", "operator": "Exists"}
    ]
    assert strategic_merge(["--a"], ["--b"]) == ["--b"]
