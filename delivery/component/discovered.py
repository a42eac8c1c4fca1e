"""What the ClusterProfile's status says the cluster is: its server version, the API versions the
controller uses there, what the server lacks. Pure: from a discovery's `Served`.

A platform team reading `kubectl get clusterprofile default -o yaml` on each of its clusters sees
which Kubernetes it runs and what the controller chose there, without reading logs.
"""

from __future__ import annotations

from typing import Any

from delivery.api.profile import ApiVersions, KubernetesVersion
from delivery.kube import discovery
from delivery.kube.discovery import Served

FIELDS = ("serverVersion", "apiVersions", "missingFeatures")
_API_FIELDS = tuple(field.alias or name for name, field in ApiVersions.model_fields.items())
"""The status fields this module's patch owns (the batch re-render writes the conditions)."""


def discovered_status(served: Served) -> dict[str, Any]:
    """The status fields for `served`, as a merge patch: a field that has nothing to say is null,
    so the patch removes what an earlier one wrote (a kind no longer served)."""
    chosen = served.chosen()
    versions = ApiVersions(
        ingress=chosen[discovery.INGRESS.kind],
        horizontal_pod_autoscaler=chosen[discovery.HORIZONTAL_POD_AUTOSCALER.kind],
        http_route=chosen[discovery.HTTP_ROUTE.kind],
    )
    server = served.server
    missing = discovery.missing_features(server) if server else []
    return {
        "serverVersion": KubernetesVersion(git_version=server.git_version, minor=server.minor).to_wire()
        if server
        else None,
        "apiVersions": {name: versions.to_wire().get(name) for name in _API_FIELDS},
        "missingFeatures": missing or None,
    }


def needs_report(status: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the status differs from `wanted` (a null in `wanted` is an absent field)."""
    return any(_present(status.get(key)) != _present(wanted.get(key)) for key in FIELDS)


def _present(value: Any) -> Any:
    """`value` as the apiserver keeps it after a merge patch: without its null fields."""
    if isinstance(value, dict):
        kept = {key: _present(item) for key, item in value.items() if item is not None}
        return kept or None
    return value
