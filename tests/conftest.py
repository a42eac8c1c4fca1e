"""Fixtures shared by the integration and end-to-end tests: one sandbox per session, with the
CRDs installed and one controller process (`tests.controller`).

They live here, not in a folder's conftest, so that a session running both folders starts each
of them once: two unsharded controllers would both act on every object, and a second install of
the CRDs would fight the controller over the conversion webhook's address.

The sandbox starts only when a test asks for it, so `pytest tests/unit` starts nothing. Its
processes die with the test run even when it is killed (see sandbox.processes).
"""

from __future__ import annotations

import json
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
