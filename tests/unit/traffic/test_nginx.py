"""The canary Ingress mirrors the stable one, points at the canary Service and carries the weight."""

from __future__ import annotations

from typing import Any

from delivery.traffic.nginx import BY_COOKIE, BY_HEADER, BY_HEADER_VALUE, CANARY, WEIGHT, canary_ingress
from delivery.traffic.route import Match, Route

OWNER = {"apiVersion": "delivery.luojilab.com/v1alpha1", "kind": "Rollout", "name": "web", "uid": "u1"}
STABLE: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "shop", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
    "spec": {
        "ingressClassName": "nginx",
        "defaultBackend": {"service": {"name": "web-stable", "port": {"number": 80}}},
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "web-stable", "port": {"number": 80}}},
                        },
                        {
                            "path": "/static",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "cdn", "port": {"number": 80}}},
                        },
                    ]
                },
            }
        ],
    },
}


def test_canary_ingress_points_the_stable_paths_at_the_canary_service() -> None:
    canary = canary_ingress(STABLE, Route("shop", "web-stable", "web-canary", OWNER), 20)
    assert canary["metadata"]["name"] == "web-canary"
    assert canary["metadata"]["ownerReferences"] == [OWNER]
    assert canary["metadata"]["annotations"] == {CANARY: "true", WEIGHT: "20"}
    paths = canary["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"]["name"] for p in paths] == ["web-canary", "cdn"]
    assert "defaultBackend" not in canary["spec"]
    assert canary["spec"]["ingressClassName"] == "nginx"
    assert STABLE["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-stable"


def test_header_and_cookie_matches_become_annotations() -> None:
    route = Route(
        "shop",
        "web-stable",
        "web-canary",
        OWNER,
        Match(header="X-Canary", header_value="yes", cookie="canary"),
    )
    annotations = canary_ingress(STABLE, route, 0)["metadata"]["annotations"]
    assert annotations[BY_HEADER] == "X-Canary"
    assert annotations[BY_HEADER_VALUE] == "yes"
    assert annotations[BY_COOKIE] == "canary"
    assert annotations[WEIGHT] == "0"
