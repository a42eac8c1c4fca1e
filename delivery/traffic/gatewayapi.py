"""Gateway API: weights on the backendRefs of the user's HTTPRoute.

Every rule that sends traffic to the stable Service gets the canary Service beside it, with the
weights splitting 100. A header match adds one rule of our own that sends matching requests to
the canary only. The HTTPRoute is the user's object, so it is changed by a merge patch guarded by
its resourceVersion (a concurrent edit makes ours fail and retry, never overwrite).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from delivery.kube.api import Kube, Object
from delivery.kube.discovery import HTTP_ROUTE
from delivery.traffic.route import Route, RoutingTargetMissing


class HTTPRouteMissing(RoutingTargetMissing):
    """The HTTPRoute named in trafficRouting.gatewayAPI.httpRoute does not exist."""


Rule = dict[str, Any]


def _refs_to(rule: Rule, service: str) -> list[dict[str, Any]]:
    return [ref for ref in rule.get("backendRefs", []) if ref.get("name") == service]


def _header_rule(route: Route, template: Rule) -> Rule | None:
    if not route.match.header:
        return None
    header = {"name": route.match.header, "value": route.match.header_value or "always"}
    port = _refs_to(template, route.stable_service)[0].get("port")
    return {
        "matches": [{"headers": [header]}],
        "backendRefs": [{"name": route.canary_service, "port": port, "weight": 1}],
    }


def _is_header_rule(rule: Rule, route: Route) -> bool:
    refs = rule.get("backendRefs", [])
    matches = rule.get("matches", [])
    return (
        len(refs) == 1
        and refs[0].get("name") == route.canary_service
        and any("headers" in match for match in matches)
    )


def weighted_rules(rules: list[Rule], route: Route, weight: int) -> list[Rule]:
    """`rules` with canary and stable backends weighted `weight` and `100 - weight`."""
    result: list[Rule] = []
    header_template: Rule | None = None
    for original in rules:
        if _is_header_rule(original, route):
            continue  # ours: rebuilt below
        rule = copy.deepcopy(original)
        stable_refs = _refs_to(rule, route.stable_service)
        if stable_refs:
            header_template = header_template or rule
            for ref in stable_refs:
                ref["weight"] = 100 - weight
            canary_refs = _refs_to(rule, route.canary_service)
            if not canary_refs:
                canary = {k: v for k, v in stable_refs[0].items() if k != "weight"}
                canary["name"] = route.canary_service
                rule["backendRefs"].append(canary)
                canary_refs = [canary]
            for ref in canary_refs:
                ref["weight"] = weight
        result.append(rule)
    header_rule = _header_rule(route, header_template) if header_template else None
    return [header_rule, *result] if header_rule else result


def canary_weight(rules: list[Rule], route: Route) -> int:
    for rule in rules:
        if _refs_to(rule, route.stable_service):
            return sum(int(ref.get("weight", 1)) for ref in _refs_to(rule, route.canary_service))
    return 0


@dataclass(frozen=True)
class GatewayAPIRouter:
    http_route: str

    async def _route(self, kube: Kube, route: Route) -> Object:
        found = await kube.get(route.apis.require(HTTP_ROUTE), route.namespace, self.http_route)
        if found is None:
            raise HTTPRouteMissing(f"HTTPRoute {route.namespace}/{self.http_route} not found")
        return found

    async def weight(self, kube: Kube, route: Route) -> int:
        return canary_weight((await self._route(kube, route))["spec"].get("rules", []), route)

    async def set_weight(self, kube: Kube, route: Route, weight: int) -> None:
        current = await self._route(kube, route)
        rules = current["spec"].get("rules", [])
        desired = weighted_rules(rules, route, weight)
        if desired != rules:
            await kube.patch_guarded(
                route.apis.require(HTTP_ROUTE),
                route.namespace,
                self.http_route,
                current["metadata"]["resourceVersion"],
                {"spec": {"rules": desired}},
            )
