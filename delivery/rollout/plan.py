"""The release plan of a Rollout, read once from its spec into what the decisions need.

The CRD schema has already validated and defaulted the spec, so this reads, it does not check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from delivery.rollout.durations import seconds
from delivery.traffic.gatewayapi import GatewayAPIRouter
from delivery.traffic.nginx import NginxRouter
from delivery.traffic.route import Match, Router
from strategies import Analysis, IntOrPercent, Pause, SetCanaryScale, SetWeight, Step
from strategies.types import Role

DEFAULT_SCALE_DOWN_DELAY = 30.0  # seconds, as Argo Rollouts: routers take a moment to stop sending


class Kind(enum.StrEnum):
    ROLLING = "rolling"
    CANARY = "canary"
    BLUE_GREEN = "blueGreen"


@dataclass(frozen=True)
class StepPlan:
    """A canary step as the strategy sees it, plus what the machine needs (a pause's length)."""

    step: Step
    pause_seconds: float | None = None  # a Pause step: None waits for a person


@dataclass(frozen=True)
class Plan:
    kind: Kind
    replicas: int
    template: dict[str, Any]
    match_labels: dict[str, str]
    progress_deadline: float
    steps: tuple[StepPlan, ...] = ()
    services: dict[Role, str] | None = None  # Service role -> Service name
    router: Router | None = None
    match: Match = field(default_factory=Match)
    scale_down_delay: float = DEFAULT_SCALE_DOWN_DELAY
    abort_scale_down_delay: float = DEFAULT_SCALE_DOWN_DELAY
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"
    preview_replicas: int | None = None
    auto_promotion: bool = True
    auto_promotion_seconds: float | None = None

    @property
    def strategy_steps(self) -> tuple[Step, ...]:
        return tuple(plan.step for plan in self.steps)


def _step(raw: dict[str, Any]) -> StepPlan:
    if "setWeight" in raw:
        return StepPlan(SetWeight(int(raw["setWeight"])))
    if "pause" in raw:
        duration = (raw["pause"] or {}).get("duration")
        return StepPlan(Pause(), seconds(duration) if duration else None)
    if "analysis" in raw:
        return StepPlan(Analysis())
    scale = raw["setCanaryScale"]
    return StepPlan(
        SetCanaryScale(
            replicas=scale.get("replicas"),
            weight=scale.get("weight"),
            match_traffic_weight=bool(scale.get("matchTrafficWeight", False)),
        )
    )


def _router(routing: dict[str, Any] | None) -> Router | None:
    if not routing:
        return None
    if "nginx" in routing:
        return NginxRouter(routing["nginx"]["stableIngress"])
    return GatewayAPIRouter(routing["gatewayAPI"]["httpRoute"])


def _match(canary: dict[str, Any]) -> Match:
    match = canary.get("match") or {}
    header = match.get("header") or {}
    return Match(header=header.get("name"), header_value=header.get("value"), cookie=match.get("cookie"))


def plan_of(spec: dict[str, Any]) -> Plan:
    strategy = spec.get("strategy") or {"rolling": {}}
    common: dict[str, Any] = {
        "replicas": int(spec.get("replicas", 1)),
        "template": spec["template"],
        "match_labels": (spec.get("selector") or {}).get("matchLabels", {}),
        "progress_deadline": float(spec.get("progressDeadlineSeconds", 600)),
    }
    if "canary" in strategy:
        canary = strategy["canary"]
        services = {
            role: canary[key]
            for role, key in ((Role.STABLE, "stableService"), (Role.CANARY, "canaryService"))
            if canary.get(key)
        }
        return Plan(
            Kind.CANARY,
            steps=tuple(_step(step) for step in canary.get("steps", [])),
            services=services,
            router=_router(canary.get("trafficRouting")),
            match=_match(canary),
            scale_down_delay=float(canary.get("scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY)),
            abort_scale_down_delay=float(canary.get("abortScaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY)),
            **common,
        )
    if "blueGreen" in strategy:
        blue_green = strategy["blueGreen"]
        services = {Role.ACTIVE: blue_green["activeService"]}
        if blue_green.get("previewService"):
            services[Role.PREVIEW] = blue_green["previewService"]
        auto_seconds = blue_green.get("autoPromotionSeconds")
        return Plan(
            Kind.BLUE_GREEN,
            services=services,
            scale_down_delay=float(blue_green.get("scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY)),
            abort_scale_down_delay=float(blue_green.get("scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY)),
            preview_replicas=blue_green.get("previewReplicaCount"),
            auto_promotion=bool(blue_green.get("autoPromotionEnabled", True)),
            auto_promotion_seconds=float(auto_seconds) if auto_seconds is not None else None,
            **common,
        )
    rolling = strategy.get("rolling") or {}
    return Plan(
        Kind.ROLLING,
        max_surge=rolling.get("maxSurge", "25%"),
        max_unavailable=rolling.get("maxUnavailable", "25%"),
        **common,
    )
