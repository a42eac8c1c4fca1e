"""What every traffic router is told: which Services carry stable and canary traffic, and how much."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from delivery.kube.api import Kube, Object
from delivery.kube.discovery import Served


class RoutingTargetMissing(LookupError):
    """An object the traffic routing names (an Ingress, an HTTPRoute) does not exist."""


@dataclass(frozen=True)
class Match:
    """Requests that go to the canary whatever the weight (a header value or a cookie)."""

    header: str | None = None
    header_value: str | None = None
    cookie: str | None = None


@dataclass(frozen=True)
class Route:
    namespace: str
    stable_service: str
    canary_service: str
    owner: Object  # ownerReference to the Rollout, so what a router creates goes away with it
    match: Match = Match()
    apis: Served = field(default_factory=Served)
    """Where the cluster serves the kinds a router writes (`delivery.kube.discovery`): a router
    speaks the version served, and raises `ApiNotServed` when there is none it can speak."""


class Router(Protocol):
    """Moves a share of traffic to the canary Service; writes nothing when it is already so."""

    async def weight(self, kube: Kube, route: Route) -> int:
        """The canary weight in force now (0 when nothing routes to the canary)."""
        ...

    async def set_weight(self, kube: Kube, route: Route, weight: int) -> None: ...
