"""ingress-nginx: a canary Ingress cloned from the stable one, weighted by annotations.

ingress-nginx pairs an Ingress marked `canary: "true"` with the non-canary Ingress of the same
host and path and sends `canary-weight` percent of requests (and every request matching
`canary-by-header` / `canary-by-cookie`) to the canary's backend. The stable Ingress stays the
user's; the canary Ingress is ours, owned by the Rollout, written by server-side apply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from delivery.kube.api import Kube, Object
from delivery.kube.discovery import Api
from delivery.traffic.route import Route, RoutingTargetMissing

PREFIX = "nginx.ingress.kubernetes.io/"
CANARY = PREFIX + "canary"
WEIGHT = PREFIX + "canary-weight"
BY_HEADER = PREFIX + "canary-by-header"
BY_HEADER_VALUE = PREFIX + "canary-by-header-value"
BY_COOKIE = PREFIX + "canary-by-cookie"

INGRESS = Api("Ingress", "ingresses", ("networking.k8s.io/v1",))
"""The Ingress as this router reads and writes it: the canary is cloned from the stable Ingress's
v1 spec (`backend.service`), a shape the v1beta1 versions (gone since Kubernetes 1.22) lack."""


class StableIngressMissing(RoutingTargetMissing):
    """The Ingress named in trafficRouting.nginx.stableIngress does not exist."""


def canary_name(stable_ingress: str) -> str:
    return f"{stable_ingress}-canary"


def _point_backends(rules: list[dict[str, Any]], stable_service: str, canary_service: str) -> None:
    for rule in rules:
        for path in rule.get("http", {}).get("paths", []):
            service = path.get("backend", {}).get("service", {})
            if service.get("name") == stable_service:
                service["name"] = canary_service


def canary_ingress(stable: Object, route: Route, weight: int) -> Object:
    """The canary Ingress for `stable`, sending `weight` percent to the canary Service."""
    spec = copy.deepcopy(stable["spec"])
    spec.pop("defaultBackend", None)  # a canary Ingress may only carry the rules it shares
    _point_backends(spec.get("rules", []), route.stable_service, route.canary_service)
    annotations = {CANARY: "true", WEIGHT: str(weight)}
    if route.match.header:
        annotations[BY_HEADER] = route.match.header
        if route.match.header_value:
            annotations[BY_HEADER_VALUE] = route.match.header_value
    if route.match.cookie:
        annotations[BY_COOKIE] = route.match.cookie
    return {
        "apiVersion": INGRESS.versions[0],
        "kind": INGRESS.kind,
        "metadata": {
            "name": canary_name(stable["metadata"]["name"]),
            "namespace": route.namespace,
            "annotations": annotations,
            "ownerReferences": [route.owner],
        },
        "spec": spec,
    }


def _same(current: Object | None, desired: Object) -> bool:
    if current is None:
        return False
    annotations = current["metadata"].get("annotations", {})
    wanted = desired["metadata"]["annotations"]
    return all(annotations.get(k) == v for k, v in wanted.items()) and current.get("spec") == desired["spec"]


@dataclass(frozen=True)
class NginxRouter:
    stable_ingress: str

    async def weight(self, kube: Kube, route: Route) -> int:
        ingress = route.apis.require(INGRESS)
        current = await kube.get(ingress, route.namespace, canary_name(self.stable_ingress))
        if current is None:
            return 0
        return int(current["metadata"].get("annotations", {}).get(WEIGHT, "0"))

    async def set_weight(self, kube: Kube, route: Route, weight: int) -> None:
        ingress = route.apis.require(INGRESS)
        stable = await kube.get(ingress, route.namespace, self.stable_ingress)
        if stable is None:
            raise StableIngressMissing(f"stable Ingress {route.namespace}/{self.stable_ingress} not found")
        desired = canary_ingress(stable, route, weight)
        current = await kube.get(ingress, route.namespace, desired["metadata"]["name"])
        if not _same(current, desired):
            await kube.apply(ingress, desired)
