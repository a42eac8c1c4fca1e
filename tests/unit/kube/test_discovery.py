"""The version of each kind is the server's, chosen purely from what discovery read."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.api.profile import IngressApiVersion
from delivery.kube import discovery
from delivery.kube.discovery import (
    HORIZONTAL_POD_AUTOSCALER,
    HTTP_ROUTE,
    INGRESS,
    ApiNotServed,
    Served,
    ServerVersion,
    choose,
    kubectl_skew,
    missing_features,
    served_from,
    to_read,
)
from delivery.traffic import nginx


def version(minor: int, major: int = 1) -> ServerVersion:
    return ServerVersion(major, minor, f"v{major}.{minor}.0")


def resources(*plurals: str) -> dict[str, Any]:
    return {"resources": [{"name": plural} for plural in plurals] + [{"name": f"{plurals[0]}/status"}]}


def groups(*group_versions: str) -> dict[str, Any]:
    by_group: dict[str, list[dict[str, str]]] = {}
    for group_version in group_versions:
        by_group.setdefault(group_version.partition("/")[0], []).append({"groupVersion": group_version})
    return {"groups": [{"name": name, "versions": versions} for name, versions in by_group.items()]}


@pytest.mark.parametrize(
    ("served", "chosen"),
    [
        (
            {"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"},
            "gateway.networking.k8s.io/v1",
        ),
        ({"gateway.networking.k8s.io/v1beta1"}, "gateway.networking.k8s.io/v1beta1"),  # Gateway API 0.x
        ({"gateway.networking.k8s.io/v1alpha2"}, None),  # a version the router does not speak
        (set(), None),  # no Gateway API CRDs
    ],
)
def test_the_preferred_version_served_is_chosen(served: set[str], chosen: str | None) -> None:
    kind = choose(HTTP_ROUTE, served)
    assert (kind.api_version if kind else None) == chosen
    if kind is not None:
        assert kind.path("shop", "web") == f"/apis/{chosen}/namespaces/shop/httproutes/web"


def test_an_older_ingress_is_chosen_only_where_v1_is_not_served() -> None:
    assert choose(INGRESS, {"extensions/v1beta1", "networking.k8s.io/v1beta1"}) == INGRESS.at(
        "networking.k8s.io/v1beta1"
    )
    assert choose(INGRESS, {"extensions/v1beta1", "networking.k8s.io/v1"}) == INGRESS.at(
        "networking.k8s.io/v1"
    )


def test_the_profiles_ingress_versions_are_the_ones_discovery_speaks() -> None:
    # ClusterProfile.spec.ingressApiVersion may name each version the controller can render and watch.
    assert tuple(IngressApiVersion) == INGRESS.versions


def test_only_the_listed_group_versions_are_read() -> None:
    listing = groups("networking.k8s.io/v1", "autoscaling/v1", "autoscaling/v2", "apps/v1")
    assert to_read(listing) == ["autoscaling/v2", "networking.k8s.io/v1"]


def test_a_group_version_counts_only_where_it_lists_the_kind() -> None:
    served = served_from(
        {
            "networking.k8s.io/v1": resources("ingresses", "ingressclasses"),
            "autoscaling/v2": resources("horizontalpodautoscalers"),
            # Gateway API's group with only a ReferenceGrant left in v1beta1
            "gateway.networking.k8s.io/v1": resources("httproutes", "gateways"),
            "gateway.networking.k8s.io/v1beta1": resources("referencegrants"),
        }
    )
    assert served == {
        "Ingress": frozenset({"networking.k8s.io/v1"}),
        "HorizontalPodAutoscaler": frozenset({"autoscaling/v2"}),
        "HTTPRoute": frozenset({"gateway.networking.k8s.io/v1"}),
    }


def test_a_kind_served_in_no_version_we_speak_is_named_when_required() -> None:
    served = Served(version(37), {"Ingress": frozenset({"networking.k8s.io/v1"})})
    assert served.require(INGRESS) == INGRESS.at("networking.k8s.io/v1")
    with pytest.raises(ApiNotServed, match=r"HTTPRoute is not served .*gateway.networking.k8s.io/v1, "):
        served.require(HTTP_ROUTE)
    assert served.chosen() == {
        "Ingress": "networking.k8s.io/v1",
        "HorizontalPodAutoscaler": None,
        "HTTPRoute": None,
    }


def test_nginx_speaks_ingress_v1_only() -> None:
    # the canary is cloned from the stable Ingress's v1 spec, a shape v1beta1 lacks
    old = Served(version(20), {"Ingress": frozenset({"networking.k8s.io/v1beta1", "extensions/v1beta1"})})
    assert old.kind(INGRESS) == INGRESS.at("networking.k8s.io/v1beta1")
    with pytest.raises(ApiNotServed, match=r"Ingress .*\(networking.k8s.io/v1\)"):
        old.require(nginx.INGRESS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"major": "1", "minor": "37", "gitVersion": "v1.37.2"}, (1, 37)),
        ({"major": "1", "minor": "33+", "gitVersion": "v1.33.4-eks-1234"}, (1, 33)),  # a provider's suffix
        ({"gitVersion": "v1.34.1-gke.100"}, (1, 34)),  # no major or minor fields
        ({"major": "", "minor": "", "gitVersion": "v1.35.0"}, (1, 35)),
    ],
)
def test_the_server_version_is_read_as_providers_write_it(
    body: dict[str, str], expected: tuple[int, int]
) -> None:
    read = ServerVersion.from_wire(body)
    assert (read.major, read.minor) == expected
    assert read.git_version == body["gitVersion"]


def test_nothing_is_missing_from_the_minors_we_support_and_cel_is_missing_before() -> None:
    assert missing_features(version(33)) == []
    assert missing_features(version(37)) == []
    old = missing_features(version(28))
    assert any("CEL validation rules" in item and "1.29" in item for item in old)
    assert not any("server-side apply" in item for item in old)


@pytest.mark.parametrize(
    ("client", "server", "warned"),
    [
        (37, 37, False),
        (36, 37, False),
        (38, 37, False),  # kubectl one minor newer is supported too
        (35, 37, True),
        (39, 37, True),
        (32, 37, True),
    ],
)
def test_kubectl_beyond_one_minor_of_the_server_is_warned(client: int, server: int, warned: bool) -> None:
    warning = kubectl_skew(version(client), version(server))
    assert (warning is not None) == warned
    if warning is not None:
        older = "older" if client < server else "newer"
        assert f"{abs(client - server)} minor versions {older}" in warning
        assert f"use a kubectl 1.{server - 1} to 1.{server + 1}" in warning


def test_another_major_version_is_warned() -> None:
    assert "another major" in (kubectl_skew(version(37, major=2), version(37)) or "")


def test_every_api_is_speakable_in_its_first_version() -> None:
    for api in discovery.APIS:
        assert api.versions, api
        assert api.at(api.versions[0]).kind == api.kind
    assert HORIZONTAL_POD_AUTOSCALER.groups == ("autoscaling",)
    assert INGRESS.groups == ("networking.k8s.io", "extensions")
