"""The release plan of a Rollout, read once from its spec into what the decisions need.

The spec is parsed by the API models (the same that generate the CRD schema), so the
controller reads exactly the fields, defaults and rules that the apiserver enforced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from delivery.api.durations import seconds
from delivery.api.rollout import (
    AnalysisKind,
    AntiAffinity,
    BackgroundAnalysis,
    CanaryStep,
    Hook,
    PodMetadata,
    RolloutAnalysis,
    RolloutSpec,
    ScaleDown,
    StrategyName,
    TrafficRouting,
)
from delivery.kube.api import Object
from delivery.rollout.experiment import Plan as ExperimentPlan
from delivery.rollout.experiment import plan_of as experiment_plan
from delivery.rollout.revision import template_hash
from delivery.traffic.gatewayapi import GatewayAPIRouter
from delivery.traffic.nginx import NginxRouter
from delivery.traffic.route import Match, Router
from strategies import Analysis, IntOrPercent, Pause, SetCanaryScale, SetWeight, Step, fenceposts
from strategies.types import Role


@dataclass(frozen=True)
class StepPlan:
    """A canary step as the strategy sees it, plus what the machine needs (a pause's length)."""

    step: Step
    pause_seconds: float | None = None  # a Pause step: None waits for a person
    analysis: RolloutAnalysis | None = None  # an Analysis step: the templates it runs
    experiment: ExperimentPlan | None = None  # an experiment step (its strategy step is an Analysis)


@dataclass(frozen=True)
class Plan:
    kind: StrategyName
    replicas: int
    template: dict[str, Any]
    match_labels: dict[str, str]
    progress_deadline: float
    progress_deadline_abort: bool = False
    min_ready_seconds: int | None = None
    scale_down: ScaleDown = ScaleDown.ON_SUCCESS  # of the Deployment a workloadRef names
    anti_affinity: AntiAffinity | None = None  # canary or blue-green: away from the stable's pods
    new_metadata: PodMetadata | None = None  # canaryMetadata or previewMetadata
    steady_metadata: PodMetadata | None = None  # stableMetadata or activeMetadata
    pod_selector: str = ""  # every pod of the Rollout, as a label selector string (status.selector)
    revision_history_limit: int = 10
    steps: tuple[StepPlan, ...] = ()
    services: dict[Role, str] = field(default_factory=dict)  # Service role -> Service name
    router: Router | None = None
    match: Match = field(default_factory=Match)
    scale_down_delay: float = 30.0
    abort_scale_down_delay: float = 30.0
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"
    pace: tuple[IntOrPercent, IntOrPercent] | None = None  # a basic canary's (maxSurge, maxUnavailable)
    min_pods: int = 0  # a routed canary's minPodsPerReplicaSet
    dynamic_stable: bool = False  # a routed canary's dynamicStableScale
    preview_replicas: int | None = None
    auto_promotion: bool = True
    auto_promotion_seconds: float | None = None
    background: BackgroundAnalysis | None = None  # canary: beside the steps
    pre_promotion: RolloutAnalysis | None = None  # blue-green
    post_promotion: RolloutAnalysis | None = None  # blue-green
    hooks: tuple[Hook, ...] = ()  # spec.hooks: gates and hooks of each release (rollout/gates.py)

    @cached_property
    def revision(self) -> str:
        """The template's own hash (its revision without tracked configuration), once per plan: a
        plan lives for a generation, and hashing the template at every reconcile was a fortieth of
        the controller's CPU in a release of 1,000 Rollouts."""
        return template_hash(self.template)

    @property
    def weight_reported(self) -> bool:
        """Whether the canary weight is only reported: no router applies it (the pods are the weight,
        and a Service, if any, is moved by its selector), so it is in force once the status that
        records it is written."""
        return self.router is None

    @property
    def traffic_reported(self) -> bool:
        """Whether the status alone records where traffic goes: no router and no Service, so the
        weight and the time traffic last moved are facts of nothing but the status."""
        return self.router is None and not self.services

    @property
    def strategy_steps(self) -> tuple[Step, ...]:
        return tuple(plan.step for plan in self.steps)

    def step(self, index: int | None) -> StepPlan | None:
        return self.steps[index] if index is not None and 0 <= index < len(self.steps) else None

    def experiment_at(self, index: int | None) -> ExperimentPlan | None:
        step = self.step(index)
        return step.experiment if step is not None else None

    def analysis(
        self, kind: AnalysisKind, step_index: int | None = None, name: str | None = None
    ) -> RolloutAnalysis | None:
        """The analysis the spec asks for at `kind` (and canary step, and experiment analysis name),
        if it asks for one; an experiment's arguments as written (`experiment.filled` fills them)."""
        if kind is AnalysisKind.STEP:
            step = self.step(step_index)
            return step.analysis if step is not None else None
        if kind is AnalysisKind.EXPERIMENT:
            planned = self.experiment_at(step_index)
            found = planned.analysis(name) if planned is not None else None
            return found.analysis if found is not None else None
        return {
            AnalysisKind.BACKGROUND: self.background,
            AnalysisKind.PRE_PROMOTION: self.pre_promotion,
            AnalysisKind.POST_PROMOTION: self.post_promotion,
        }[kind]


def _step(step: CanaryStep) -> StepPlan:
    if step.set_weight is not None:
        return StepPlan(SetWeight(step.set_weight))
    if step.pause is not None:
        duration = step.pause.duration
        return StepPlan(Pause(), None if duration is None else seconds(duration))
    if step.analysis is not None:
        return StepPlan(Analysis(), analysis=step.analysis)
    if step.experiment is not None:
        return StepPlan(Analysis(), experiment=experiment_plan(step.experiment))
    scale = step.set_canary_scale
    assert scale is not None  # noqa: S101 - the CRD's CEL rule: exactly one action per step
    return StepPlan(SetCanaryScale(scale.replicas, scale.weight, bool(scale.match_traffic_weight)))


def _router(routing: TrafficRouting | None) -> Router | None:
    if routing is None:
        return None
    if routing.nginx is not None:
        return NginxRouter(routing.nginx.stable_ingress)
    assert routing.gateway_api is not None  # noqa: S101 - the CRD's CEL rule: exactly one router
    return GatewayAPIRouter(routing.gateway_api.http_route)


ROUTED_SCALE_DOWN_DELAY = 30
"""Argo Rollouts' default scale-down delay of a canary with a traffic router, in seconds."""


def _routed_delay(seconds: int | None, routing: TrafficRouting | None) -> float:
    """A canary's scale-down delay, as Argo Rollouts reads it: the time a router takes to stop
    sending to pods it no longer selects, so only with a router (30 s unless set). A basic canary's
    traffic follows its pods, so it waits for nothing and a value set there is ignored."""
    if routing is None:
        return 0.0
    return float(ROUTED_SCALE_DOWN_DELAY if seconds is None else seconds)


ARGO_PACE = "25%"
"""Argo Rollouts' canary maxSurge and maxUnavailable, each when only the other is set."""


def _limited(delay: float, revision_limit: int | None) -> float:
    """The scale-down delay under scaleDownDelayRevisionLimit: at most the previous revision ever
    waits it out here, so a limit of 0 (no old revision may wait) is the only one that changes it."""
    return 0.0 if revision_limit == 0 else delay


class InvalidSpec(ValueError):
    """The spec cannot be released as it stands: said in the status, retried when it changes."""


def _pace(
    max_surge: IntOrPercent | None, max_unavailable: IntOrPercent | None, replicas: int
) -> tuple[IntOrPercent, IntOrPercent] | None:
    """A canary's budgets as Argo reads them when either is set; neither: None, the surge-first
    default that takes no pod out of service."""
    if max_surge is None and max_unavailable is None:
        return None
    pace = (
        ARGO_PACE if max_surge is None else max_surge,
        ARGO_PACE if max_unavailable is None else max_unavailable,
    )
    try:
        fenceposts(*pace, replicas)
    except ValueError as error:
        raise InvalidSpec(f"strategy.canary: {error}") from error
    return pace


_OPERATORS = {
    "In": "{key} in ({values})",
    "NotIn": "{key} notin ({values})",
    "Exists": "{key}",
    "DoesNotExist": "!{key}",
}


def selector_string(selector: dict[str, Any]) -> str:
    """A label selector (matchLabels and matchExpressions) in the string form the apiserver parses,
    as a scale subresource's selector is read: an HPA selects the pods it measures by it. Every
    requirement is kept, so a selector of expressions alone never becomes "" (every pod there is)."""
    labels = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    expressions = [
        _OPERATORS[expression["operator"]].format(
            key=expression["key"], values=",".join(sorted(expression.get("values") or []))
        )
        for expression in selector.get("matchExpressions") or []
    ]
    return ",".join(labels + expressions)


def _target(spec: RolloutSpec, workload: Object | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod template and the pod selector: inline, or taken from the referenced Deployment."""
    if spec.template is not None:
        return spec.template, spec.selector.to_wire() if spec.selector else {}
    if spec.workload_ref is not None:
        if workload is None:
            raise InvalidSpec(f"workloadRef: Deployment {spec.workload_ref.name} not found")
        template: dict[str, Any] = workload["spec"]["template"]
        return template, workload["spec"]["selector"]
    raise InvalidSpec(
        "componentRef: a Component is released by its own `release` block, from which the Component"
        " controller renders a Rollout with an inline template; here, name the pods with `template`"
        " or `workloadRef`"
    )


def _ephemeral(field: str, metadata: PodMetadata | None, selector: dict[str, Any]) -> PodMetadata | None:
    """A role's metadata, refused when it would change a label the pods are selected by: a pod that
    lost it would leave its ReplicaSet, which would make another."""
    selected = set(selector.get("matchLabels") or {}) | {
        expression["key"] for expression in selector.get("matchExpressions") or []
    }
    clashing = sorted(selected & set((metadata and metadata.labels) or {}))
    if clashing:
        raise InvalidSpec(
            f"{field}.labels: {', '.join(clashing)} selects the Rollout's pods: give a role its own label"
        )
    return metadata


HOOK_TIMEOUT_LIMIT = 60.0
"""Seconds one attempt of a hook may take at most: a reconcile waits for its hooks' answers."""


def _hooks(spec: RolloutSpec) -> tuple[Hook, ...]:
    """The hooks, their durations checked where a schema pattern cannot say it."""
    for hook in spec.hooks or ():
        if not 0 < seconds(hook.timeout) <= HOOK_TIMEOUT_LIMIT:
            raise InvalidSpec(f"hooks[{hook.name}].timeout {hook.timeout}: give more than 0s, at most 60s")
        if seconds(hook.interval) < 1:
            raise InvalidSpec(f"hooks[{hook.name}].interval {hook.interval}: give at least 1s")
    return tuple(spec.hooks or ())


def plan_of(raw_spec: dict[str, Any], workload: Object | None = None) -> Plan:
    """The plan of a Rollout; `workload` is the Deployment its workloadRef names, when it has one."""
    try:
        spec = RolloutSpec.model_validate(raw_spec)
    except ValidationError as error:
        raise InvalidSpec(str(error)) from error
    template, selector = _target(spec, workload)
    common: dict[str, Any] = {
        "replicas": spec.replicas,
        "template": template,
        "match_labels": dict(selector.get("matchLabels") or {}),
        "pod_selector": selector_string(selector),
        "progress_deadline": float(spec.progress_deadline_seconds),
        "progress_deadline_abort": bool(spec.progress_deadline_abort),
        "min_ready_seconds": spec.min_ready_seconds,
        "scale_down": (spec.workload_ref and spec.workload_ref.scale_down) or ScaleDown.ON_SUCCESS,
        "revision_history_limit": spec.revision_history_limit,
        "hooks": _hooks(spec),
    }
    strategy = spec.strategy
    if strategy.canary is not None:
        canary = strategy.canary
        named = ((Role.STABLE, canary.stable_service), (Role.CANARY, canary.canary_service))
        match, routing = canary.match, canary.traffic_routing
        return Plan(
            StrategyName.CANARY,
            steps=tuple(_step(step) for step in canary.steps or ()),
            services={role: name for role, name in named if name},
            router=_router(routing),
            match=Match(match.header, match.header_value, match.cookie) if match else Match(),
            scale_down_delay=_limited(
                _routed_delay(canary.scale_down_delay_seconds, routing),
                canary.scale_down_delay_revision_limit,
            ),
            abort_scale_down_delay=_routed_delay(canary.abort_scale_down_delay_seconds, routing),
            background=canary.analysis,
            anti_affinity=canary.anti_affinity,
            new_metadata=_ephemeral("canaryMetadata", canary.canary_metadata, selector),
            steady_metadata=_ephemeral("stableMetadata", canary.stable_metadata, selector),
            pace=_pace(canary.max_surge, canary.max_unavailable, spec.replicas),
            min_pods=canary.min_pods_per_replica_set or 0,
            dynamic_stable=bool(canary.dynamic_stable_scale),
            **common,
        )
    if strategy.blue_green is not None:
        blue_green = strategy.blue_green
        services = {Role.ACTIVE: blue_green.active_service}
        if blue_green.preview_service:
            services[Role.PREVIEW] = blue_green.preview_service
        auto_seconds = blue_green.auto_promotion_seconds
        return Plan(
            StrategyName.BLUE_GREEN,
            services=services,
            scale_down_delay=_limited(
                float(blue_green.scale_down_delay_seconds), blue_green.scale_down_delay_revision_limit
            ),
            abort_scale_down_delay=float(
                blue_green.scale_down_delay_seconds
                if blue_green.abort_scale_down_delay_seconds is None
                else blue_green.abort_scale_down_delay_seconds
            ),
            preview_replicas=blue_green.preview_replica_count,
            anti_affinity=blue_green.anti_affinity,
            new_metadata=_ephemeral("previewMetadata", blue_green.preview_metadata, selector),
            steady_metadata=_ephemeral("activeMetadata", blue_green.active_metadata, selector),
            auto_promotion=blue_green.auto_promotion_enabled,
            auto_promotion_seconds=float(auto_seconds) if auto_seconds is not None else None,
            pre_promotion=blue_green.pre_promotion_analysis,
            post_promotion=blue_green.post_promotion_analysis,
            **common,
        )
    rolling = strategy.rolling
    assert rolling is not None  # noqa: S101 - the CRD's CEL rule: exactly one strategy
    if rolling.analysis is not None:
        raise InvalidSpec(
            "strategy.rolling.analysis is not supported yet: a rolling update cannot roll back; "
            "use a canary with background analysis (strategy.canary.analysis)"
        )
    return Plan(
        StrategyName.ROLLING, max_surge=rolling.max_surge, max_unavailable=rolling.max_unavailable, **common
    )


class Plans:
    """Each Rollout's plan, parsed once per generation of its spec (and version of the Deployment a
    workloadRef names) instead of at every reconcile: the pydantic parse was a twentieth of the
    controller's CPU in a release, and a spec is the same until its generation moves.

    An invalid spec is not kept: it raises again each time, as `plan_of` does."""

    def __init__(self) -> None:
        self._plans: dict[tuple[str, str], tuple[tuple[object, ...], Plan]] = {}

    def of(self, rollout: Object, workload: Object | None = None) -> Plan:
        metadata = rollout["metadata"]
        key = (metadata.get("namespace", ""), metadata["name"])
        version = (workload or {}).get("metadata", {}).get("resourceVersion")
        fingerprint = (metadata.get("uid"), metadata.get("generation"), workload is not None, version)
        known = self._plans.get(key)
        if known is not None and known[0] == fingerprint:
            return known[1]
        plan = plan_of(rollout["spec"], workload)
        self._plans[key] = (fingerprint, plan)
        return plan

    def forget(self, key: tuple[str, str]) -> None:
        """The Rollout is gone."""
        self._plans.pop(key, None)
