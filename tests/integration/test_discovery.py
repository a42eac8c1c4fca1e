"""The code follows the cluster: what the controller discovered is in the ClusterProfile's status,
and a kind the cluster stops serving is a condition naming it, until its CRDs come back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kubernetes.aio import config as aio_config

from delivery.kube.api import Kube
from delivery.kube.discovery import HTTP_ROUTE, INGRESS, Discovery
from sandbox.cluster import Sandbox
from tests import gateway_api
from tests.controller import Controller
from tests.integration.test_rollout_traffic import canary, http_route
from tests.rollouts import apply, get, rollout, service, status, wait_for
from tests.waiting import eventually

PROFILES = "clusterprofiles.component.luojilab.com"


@pytest.fixture
async def kube(sandbox: Sandbox) -> AsyncIterator[Kube]:
    client = await aio_config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    yield Kube(client)
    await client.close()


async def test_discovery_is_read_once_and_again_only_when_stale_and_due(kube: Kube) -> None:
    apis = Discovery(kube, refresh_after=3600)
    served = await apis.current()
    assert served.require(INGRESS).api_version == "networking.k8s.io/v1"
    assert served.require(HTTP_ROUTE).api_version == "gateway.networking.k8s.io/v1"
    read = dict(kube.requests)
    assert read["GET"] >= 2  # /version, /apis, then the group versions that may serve our kinds
    assert await apis.current() is served
    apis.stale()
    assert await apis.current() is served  # stale, but read less than refresh_after ago
    assert dict(kube.requests) == read
    apis.refresh_after = 0
    apis.stale()
    assert await apis.current() == served
    assert kube.requests["GET"] == 2 * read["GET"]
    await apis.current()  # not stale any more
    assert kube.requests["GET"] == 2 * read["GET"]


@pytest.fixture
def default_profile(sandbox: Sandbox, controller: Controller) -> Iterator[None]:
    """The ClusterProfile the controller reads (`default`), made if there is none, with every
    field at its default (so no Component renders differently), removed after if made here."""
    made = not sandbox.kubectl_run("get", PROFILES, "default", "--ignore-not-found", "-o", "name").strip()
    if made:
        apply(
            sandbox,
            {
                "apiVersion": "component.luojilab.com/v1beta1",
                "kind": "ClusterProfile",
                "metadata": {"name": "default"},
                "spec": {},
            },
        )
    yield
    if made:
        sandbox.kubectl_run("delete", PROFILES, "default", "--ignore-not-found")


def test_the_cluster_profile_records_the_server_version_and_the_api_versions_chosen(
    sandbox: Sandbox, default_profile: None
) -> None:
    server = json.loads(sandbox.kubectl_run("version", "-o", "json"))["serverVersion"]

    def recorded() -> dict[str, Any] | None:
        found = (get(sandbox, PROFILES, "default", "").get("status") or {}).get("serverVersion")
        return get(sandbox, PROFILES, "default", "")["status"] if found else None

    written = eventually(recorded, timeout=30, what="the ClusterProfile's status saying what was discovered")
    assert written["serverVersion"] == {"gitVersion": server["gitVersion"], "minor": int(server["minor"])}
    assert written["apiVersions"] == {
        "ingress": "networking.k8s.io/v1",
        "horizontalPodAutoscaler": "autoscaling/v2",
        "httpRoute": "gateway.networking.k8s.io/v1",
    }
    assert "missingFeatures" not in written  # every minor we support has what the CRDs rely on
    columns = sandbox.kubectl_run(
        "get", PROFILES, "default", "-o", "custom-columns=K:.status.serverVersion.gitVersion"
    )
    assert server["gitVersion"] in columns


def test_an_httproute_no_longer_served_is_named_until_its_crds_come_back(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    sandbox.kubectl_run("delete", "crd", gateway_api.HTTP_ROUTES_CRD, "--wait=true")
    try:
        apply(
            sandbox,
            service("web", namespace, "web"),
            service("web-canary", namespace, "web"),
            rollout("web", namespace, "web:1", canary({"gatewayAPI": {"httpRoute": "web"}}), replicas=2),
        )
        told = eventually(
            lambda: (
                "HTTPRoute is not served" in (status(sandbox, "web", namespace).get("message") or "") or None
            ),
            timeout=90,
            what="the Rollout saying HTTPRoute is not served",
        )
        assert told
        assert "gateway.networking.k8s.io/v1" in status(sandbox, "web", namespace)["message"]
    finally:
        gateway_api.install(sandbox, gateway_api.DEFAULT)
    apply(sandbox, http_route(namespace))
    wait_for(sandbox, "web", namespace, timeout=120, phase="Healthy")
