"""ClusterProfile's status says what discovery found: the server's version, the API versions used."""

from __future__ import annotations

from delivery.api.profile import ClusterProfileStatus
from delivery.component.discovered import discovered_status, needs_report
from delivery.kube.discovery import Served, ServerVersion

NEWEST = Served(
    ServerVersion(1, 37, "v1.37.2"),
    {
        "Ingress": frozenset({"networking.k8s.io/v1"}),
        "HorizontalPodAutoscaler": frozenset({"autoscaling/v2"}),
        "HTTPRoute": frozenset({"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"}),
    },
)


def test_the_status_names_the_server_and_each_version_chosen() -> None:
    status = discovered_status(NEWEST)
    assert status == {
        "serverVersion": {"gitVersion": "v1.37.2", "minor": 37},
        "apiVersions": {
            "ingress": "networking.k8s.io/v1",
            "horizontalPodAutoscaler": "autoscaling/v2",
            "httpRoute": "gateway.networking.k8s.io/v1",
        },
        "missingFeatures": None,
    }
    # what the CRD's schema (generated from this model) accepts
    ClusterProfileStatus.model_validate({k: v for k, v in status.items() if v is not None})


def test_a_kind_not_served_is_absent_and_what_an_old_server_lacks_is_listed() -> None:
    old = Served(ServerVersion(1, 28, "v1.28.9"), {"Ingress": frozenset({"networking.k8s.io/v1"})})
    status = discovered_status(old)
    assert status["apiVersions"] == {
        "ingress": "networking.k8s.io/v1",
        "horizontalPodAutoscaler": None,
        "httpRoute": None,
    }
    assert any("CEL" in item for item in status["missingFeatures"])


def test_written_once_then_only_when_it_changes() -> None:
    wanted = discovered_status(NEWEST)
    assert needs_report({}, wanted)
    written = {"conditions": [{"type": "Rerendered"}], **{k: v for k, v in wanted.items() if v is not None}}
    assert written["apiVersions"]["httpRoute"] == "gateway.networking.k8s.io/v1"
    assert not needs_report(written, wanted)  # a null is a field the merge patch removed
    upgraded = discovered_status(Served(ServerVersion(1, 38, "v1.38.0"), NEWEST.versions))
    assert needs_report(written, upgraded)
    without_routes = discovered_status(Served(NEWEST.server, {**NEWEST.versions, "HTTPRoute": frozenset()}))
    assert needs_report(written, without_routes)
    assert without_routes["apiVersions"]["httpRoute"] is None  # the merge patch removes it
