"""Which context and namespace the plugin acts on: kubectl's rules, over one or several files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery.cli.kubeconfig import KubeconfigError, config_files, resolve, target


def kubeconfig(current: str | None, **namespaces: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "contexts": [
            {"name": name, "context": {"cluster": "c", **({"namespace": ns} if ns else {})}}
            for name, ns in namespaces.items()
        ]
    }
    if current is not None:
        document["current-context"] = current
    return document


def test_the_current_contexts_namespace_else_default() -> None:
    assert resolve([kubeconfig("a", a="shop")], context=None, namespace=None) == ("a", "shop")
    assert resolve([kubeconfig("a", a=None)], context=None, namespace=None) == ("a", "default")
    assert resolve([{}], context=None, namespace=None) == (None, "default")


def test_the_flags_come_first() -> None:
    documents = [kubeconfig("a", a="shop", b="books")]
    assert resolve(documents, context=None, namespace="other") == ("a", "other")
    assert resolve(documents, context="b", namespace=None) == ("b", "books")
    with pytest.raises(KubeconfigError, match="'nope' is not in the kubeconfig"):
        resolve(documents, context="nope", namespace=None)


def test_of_several_files_the_first_to_set_a_key_wins() -> None:
    """As kubectl (and unlike the kubernetes client, where the last current-context wins)."""
    first = {"current-context": "b"}
    second = kubeconfig("a", a="shop", b="books")
    third = kubeconfig("c", b="elsewhere")
    assert resolve([first, second, third], context=None, namespace=None) == ("b", "books")
    assert resolve([{}, second], context=None, namespace=None) == ("a", "shop")


def test_the_files_in_kubectls_order(tmp_path: Path) -> None:
    one, two, home = tmp_path / "one", tmp_path / "two", tmp_path / "home"
    for path in (one, two):
        path.write_text("{}")
    listed = f"{one}:{tmp_path / 'missing'}:{two}"
    assert config_files(None, {"KUBECONFIG": listed}, home) == (one, two)
    assert config_files(str(two), {"KUBECONFIG": listed}, home) == (two,)
    assert config_files(None, {}, home) == ()
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("{}")
    assert config_files(None, {}, home) == (home / ".kube" / "config",)


def test_target_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text(yaml.safe_dump({"current-context": "b"}))
    second.write_text(yaml.safe_dump(kubeconfig("a", a="shop", b="books")))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    where = target(None, None, None)
    assert (where.context, where.namespace) == ("b", "books")
    assert where.config_file == f"{first}:{second}"
