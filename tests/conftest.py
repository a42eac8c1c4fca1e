"""Fixtures shared by the integration and end-to-end tests: one sandbox per session, with the
CRDs installed and one controller process (`tests.controller`).

They live here, not in a folder's conftest, so that a session running both folders starts each
of them once: two unsharded controllers would both act on every object, and a second install of
the CRDs would fight the controller over the conversion webhook's address.

Under pytest-xdist (scripts/test.sh runs two workers) each worker is a session of its own, with
its own sandbox and controller: every port is picked at start and every file lives under the
worker's own temporary directory, so the sandboxes never meet, and a file's tests all run on one
worker (`--dist loadfile`).

The sandbox starts only when a test asks for it, so `pytest tests/unit` starts nothing. Its
processes die with the test run even when it is killed (see sandbox.processes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from delivery.analysis.run import PROMETHEUS_ENV
from sandbox.cluster import Sandbox
from tests import analysis_egress, namespaces
from tests.controller import Controller
from tests.waiting import eventually

CONVERTED_CRD = "components.component.luojilab.com"
TESTS = Path(__file__).resolve().parent
CLUSTER_FIRST = ("e2e", "integration", "unit")
"""The order in which pytest-xdist's workers take the test folders (see pytest_collection_modifyitems)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (scripts/test.sh), the files that need the cluster go out first, the
    end-to-end demo before the integration files, and the unit files last: the workers take files
    in this order, so the many short unit files fill the end of the run instead of a long cluster
    file starting when the other worker has nothing left. A serial run keeps the collection order
    (testpaths: fastest first, so a broken unit fails within seconds)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    # Every worker collects and sorts alike (the sort is stable), as xdist requires.
    items.sort(key=_folder_rank)


def _folder_rank(item: pytest.Item) -> int:
    folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
    return CLUSTER_FIRST.index(folder) if folder in CLUSTER_FIRST else len(CLUSTER_FIRST)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(root=tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="session")
def api(sandbox: Sandbox) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, with its default service account (pods need it), deleted after."""
    name = namespaces.create(api)
    yield name
    namespaces.delete(api, name)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def crds(sandbox: Sandbox, repo_root: Path) -> None:
    sandbox.kubectl_run("apply", "--server-side", "-f", str(repo_root / "crds"))
    sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


@pytest.fixture
def conversion_restored(sandbox: Sandbox, crds: None) -> Iterator[None]:
    """For a test whose own controller serves the webhook (`--webhook local`) and so points the
    Component CRD at itself: give the CRD back to whatever served it before (the session's
    controller, say)."""
    before = sandbox.kubectl_run("get", "crd", CONVERTED_CRD, "-o", "jsonpath={.spec.conversion}")
    yield
    patch = [{"op": "replace", "path": "/spec/conversion", "value": json.loads(before)}]
    sandbox.kubectl_run("patch", "crd", CONVERTED_CRD, "--type=json", "-p", json.dumps(patch))


@pytest.fixture(scope="session")
def controller(
    sandbox: Sandbox, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    # The sandbox's Prometheus is the controller's own, as the chart's `analysis.prometheusUrl` makes
    # it in a cluster: metrics that name no address (the examples') query it.
    running = Controller(
        sandbox,
        tmp_path_factory.mktemp("controller") / "delivery.log",
        # Configuration releases as the chart's configTracking turns them on: the examples and the
        # manual's blocks use them.
        args=(analysis_egress.FLAG, "--track-configmaps", "--track-secrets"),
        env={PROMETHEUS_ENV: sandbox.prometheus_url},
    )
    running.start()
    # Components are unreadable until the conversion webhook serves and the CRD points at it.
    eventually(
        lambda: "conversion webhook at" in running.tail() or None, timeout=60, what="the webhook serving"
    )
    yield running
    running.stop()
