"""Traffic routers move real objects: nginx canary Ingress annotations, Gateway API HTTPRoute weights."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from delivery.rollout.revision import template_hash
from delivery.traffic.nginx import CANARY, WEIGHT
from sandbox.cluster import Sandbox
from sandbox.versions import GATEWAY_API_VERSIONS
from tests import gateway_api
from tests.controller import Controller
from tests.rollouts import PROMOTE, apply, get, rollout, service, wait_for

STEPS = [{"setWeight": 30}, {"pause": {}}]


def canary(routing: dict[str, Any]) -> dict[str, Any]:
    return {
        "canary": {
            "steps": STEPS,
            "canaryService": "web-canary",
            "stableService": "web",
            "trafficRouting": routing,
            "scaleDownDelaySeconds": 0,
        }
    }


def ingress(namespace: str) -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def http_route(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }


def release_twice(sandbox: Sandbox, namespace: str, routing: dict[str, Any], *extra: dict[str, Any]) -> str:
    apply(
        sandbox,
        service("web", namespace, "web"),
        service("web-canary", namespace, "web"),
        *extra,
        rollout("web", namespace, "web:1", canary(routing), replicas=3),
    )
    wait_for(sandbox, "web", namespace, phase="Healthy")
    second = rollout("web", namespace, "web:2", canary(routing), replicas=3)
    apply(sandbox, second)
    wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)
    return template_hash(second["spec"]["template"])


@pytest.mark.matrix
def test_nginx_canary_ingress_carries_the_weight(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    new = release_twice(sandbox, namespace, {"nginx": {"stableIngress": "web"}}, ingress(namespace))
    paused = get(sandbox, "ingress", "web-canary", namespace)
    assert paused["metadata"]["annotations"][CANARY] == "true"
    assert paused["metadata"]["annotations"][WEIGHT] == "30"
    assert paused["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-canary"
    assert (
        get(sandbox, "service", "web-canary", namespace)["spec"]["selector"][
            "delivery.luojilab.com/pod-template-hash"
        ]
        == new
    )

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
    wait_for(sandbox, "web", namespace, phase="Healthy", stableRevision=new)
    assert get(sandbox, "ingress", "web-canary", namespace)["metadata"]["annotations"][WEIGHT] == "0"
    assert (
        get(sandbox, "service", "web", namespace)["spec"]["selector"][
            "delivery.luojilab.com/pod-template-hash"
        ]
        == new
    )
    assert (
        get(sandbox, "ingress", "web", namespace)["spec"] == ingress(namespace)["spec"]
    )  # the user's, untouched


@pytest.fixture(params=GATEWAY_API_VERSIONS)
def gateway_api_release(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[str]:
    """Each Gateway API release we test with (the older one over the sandbox's newest, which is
    put back after)."""
    version: str = request.param
    if version != gateway_api.DEFAULT:
        gateway_api.install(sandbox, version)
    try:
        assert gateway_api.installed(sandbox) == version
        yield version
    finally:
        if version != gateway_api.DEFAULT:
            gateway_api.install(sandbox, gateway_api.DEFAULT)


@pytest.mark.matrix
def test_gateway_api_route_weights(
    sandbox: Sandbox, namespace: str, controller: Controller, gateway_api_release: str
) -> None:
    new = release_twice(sandbox, namespace, {"gatewayAPI": {"httpRoute": "web"}}, http_route(namespace))
    refs = get(sandbox, "httproute", "web", namespace)["spec"]["rules"][0]["backendRefs"]
    assert {ref["name"]: ref["weight"] for ref in refs} == {"web": 70, "web-canary": 30}

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
    wait_for(sandbox, "web", namespace, phase="Healthy", stableRevision=new)
    refs = get(sandbox, "httproute", "web", namespace)["spec"]["rules"][0]["backendRefs"]
    assert {ref["name"]: ref["weight"] for ref in refs} == {"web": 100, "web-canary": 0}
