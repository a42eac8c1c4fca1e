"""The sandbox's version matrix: a release is chosen by minor or version, and each names builds that
its own Go modules (sandbox/gomod) really pin."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from sandbox import versions
from sandbox.cluster import Sandbox
from sandbox.versions import DEFAULT, KNOWN, MATRIX, NEWEST, OLDEST, UPGRADE_FROM, Release


@pytest.mark.parametrize(
    ("name", "expected"),
    [("1.37", NEWEST), ("1.37.2", NEWEST), ("v1.37.2", NEWEST), ("1.33", OLDEST), ("1.36", UPGRADE_FROM)],
)
def test_a_release_is_named_by_its_minor_or_its_version(name: str, expected: Release) -> None:
    assert versions.release(name) is expected


@pytest.mark.parametrize("name", ["1.32", "1.37.1", "latest"])
def test_a_release_outside_the_matrix_is_refused_naming_those_in_it(name: str) -> None:
    with pytest.raises(ValueError, match=r"v1\.37\.2, v1\.36\.3, v1\.33\.13"):
        versions.release(name)


def test_delivery_kubernetes_selects_the_release_and_the_default_is_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(versions.ENV, raising=False)
    assert versions.selected() is DEFAULT is NEWEST
    monkeypatch.setenv(versions.ENV, "1.33")
    assert versions.selected() is OLDEST


def test_every_release_of_the_matrix_builds_its_own_kubectl_and_the_upgrade_source_borrows_one_in_skew() -> (
    None
):
    for release in MATRIX:
        assert release.kubectl_from is release.kubernetes
        assert "kubectl" in release.kubernetes.commands
    assert "kubectl" not in UPGRADE_FROM.kubernetes.commands
    kubectl_minor = int(UPGRADE_FROM.kubectl_from.minor.split(".")[1])
    assert abs(kubectl_minor - int(UPGRADE_FROM.minor.split(".")[1])) <= 1
    assert UPGRADE_FROM.kubectl_from in UPGRADE_FROM.builds


@pytest.mark.parametrize("release", KNOWN, ids=lambda release: release.minor)
def test_each_kubernetes_module_requires_its_version_with_every_staging_module_at_the_same_patch(
    release: Release,
) -> None:
    gomod = (release.kubernetes.gomod / "go.mod").read_text()
    version = release.kubernetes.version
    assert f"require k8s.io/kubernetes {version}\n" in gomod
    staging = re.findall(r"^\s+(k8s\.io/\S+) => \1 (\S+)$", gomod, flags=re.MULTILINE)
    assert len(staging) > 20
    assert {pinned for _, pinned in staging} == {version.replace("v1.", "v0.", 1)}


@pytest.mark.parametrize("release", KNOWN, ids=lambda release: release.minor)
def test_each_etcd_module_requires_its_version(release: Release) -> None:
    gomod = (release.etcd.gomod / "go.mod").read_text()
    assert f"require go.etcd.io/etcd/server/v3 {release.etcd.version}\n" in gomod


@pytest.mark.parametrize(
    "release",
    [OLDEST, UPGRADE_FROM, replace(NEWEST, etcd=UPGRADE_FROM.etcd)],
    ids=["oldest", "upgrade-from", "upgraded"],
)
def test_a_saved_sandbox_loads_with_the_release_and_etcd_it_runs(tmp_path: Path, release: Release) -> None:
    Sandbox(root=tmp_path, release=release)._save_state()
    assert Sandbox.load(tmp_path).release == release


def test_a_sandbox_saved_before_the_matrix_loads_with_the_selected_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(versions.ENV, "1.33")
    (tmp_path / "state.json").write_text(json.dumps({"ports": {}, "nodes": 1, "processes": []}))
    assert Sandbox.load(tmp_path).release is OLDEST
