"""A canary: the new revision takes a growing share of traffic, step by step, beside the stable one.

The order of every move: the canary is scaled up before its weight is raised; traffic leaves a
revision before it loses pods; a Service selects a revision only once it can take the traffic.
Each gate reads what is already applied and ready, so a decision is safe to apply all at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from strategies.handover import hand_over, resize, retire_others, select, selected, settled
from strategies.replicas import percent_of, shift
from strategies.rolling import IntOrPercent, fenceposts
from strategies.steps import SetCanaryScale, Step, canary_replicas_at, weight_at
from strategies.types import Desired, ReplicaSetState, Role, find


@dataclass(frozen=True)
class CanaryFacts:
    replicas: int  # spec.replicas
    steps: tuple[Step, ...]
    index: int  # the current step; len(steps) once every step is done: promote
    stable: str  # revision of the stable ReplicaSet; equal to canary when there is nothing to roll out
    canary: str  # revision of the current pod template
    observed: tuple[ReplicaSetState, ...] = ()
    applied_weight: int = 0  # the canary weight in force now
    applied_selectors: Mapping[Role, str] = field(default_factory=dict)  # what each Service selects now
    # Routed (nginx, Gateway API): the stable stays at full size and only the weight moves.
    # Basic (no router): traffic follows pods, so the weight is approximated by the replica split.
    traffic_routed: bool = True
    aborted: bool = False
    scale_down_allowed: bool = False  # the scale-down delay has passed since traffic last moved
    # A basic canary's (maxSurge, maxUnavailable), as in Argo Rollouts: its steps and its promotion
    # move pods within them. None: each step's canary surges at once and no pod is taken out of
    # service (the stable gives up pods only as canary ones become ready).
    pace: tuple[IntOrPercent, IntOrPercent] | None = None
    min_pods: int = 0  # routed: a canary that has pods has at least this many (minPodsPerReplicaSet)
    # Routed, Argo's dynamicStableScale: the stable shrinks to the share of traffic it still takes.
    dynamic_stable: bool = False

    def __post_init__(self) -> None:
        if self.pace is not None:
            fenceposts(*self.pace, self.replicas)
        if self.replicas < 0:
            raise ValueError(f"replicas {self.replicas} must not be negative")
        if not 0 <= self.index <= len(self.steps):
            raise ValueError(f"step index {self.index} is not within 0..{len(self.steps)}")
        if not 0 <= self.applied_weight <= 100:
            raise ValueError(f"applied weight {self.applied_weight} is not within 0..100")
        if not self.traffic_routed and any(isinstance(step, SetCanaryScale) for step in self.steps):
            raise ValueError("SetCanaryScale needs traffic routing: without it, pods are the weight")

    def rs(self, revision: str) -> ReplicaSetState:
        return find(self.observed, revision)

    @property
    def serving(self) -> frozenset[str]:
        """Revisions a Service sends traffic to now: the stable one's, and the canary one's while weighted."""
        roles = (Role.STABLE, Role.CANARY) if self.applied_weight > 0 else (Role.STABLE,)
        return frozenset(self.applied_selectors[role] for role in roles if role in self.applied_selectors)


@dataclass(frozen=True)
class _Phase:
    targets: dict[str, int]  # where the phase ends
    replicas: dict[str, int]  # as far toward the targets as is safe now
    weight: int  # the canary weight the phase asks for now
    stable_role: str  # the revision the stable Service should select


def decide_canary(facts: CanaryFacts) -> Desired:
    if facts.stable == facts.canary:
        phase = _steady(facts)
    elif facts.aborted:
        phase = _abort(facts)
    elif facts.index == len(facts.steps):
        phase = _promote(facts)
    else:
        phase = _step(facts)
    return _desire(facts, phase)


def _steady(facts: CanaryFacts) -> _Phase:
    """Nothing to roll out (or a rollback to the stable revision, which needs no steps)."""
    targets = {facts.stable: facts.replicas}
    return _Phase(targets, targets, weight=0, stable_role=facts.stable)


def _step(facts: CanaryFacts) -> _Phase:
    weight = weight_at(facts.steps, facts.index)
    count = canary_replicas_at(
        facts.steps, facts.index, facts.replicas, facts.min_pods if facts.traffic_routed else 0
    )
    if not facts.traffic_routed:
        # Pods are the weight: the canary surges, and the stable gives up pods within the budgets.
        return _paced(
            facts, {facts.stable: facts.replicas - count, facts.canary: count}, weight, facts.stable
        )
    # The stable stays at full size (or, dynamic, at the share of traffic it takes now or next,
    # whichever is larger); a smaller canary waits until the weight it carries is lowered and the
    # stable, ready at that size, is the revision its traffic goes back to.
    stable = facts.replicas
    if facts.dynamic_stable:
        stable = percent_of(facts.replicas, 100 - min(weight, facts.applied_weight), round_up=True)
    stable_ready = facts.rs(facts.stable).ready >= stable
    shrink = (
        facts.applied_weight <= weight
        and stable_ready
        and facts.applied_selectors.get(Role.STABLE) != facts.canary
    )
    targets = {facts.stable: stable, facts.canary: count}
    replicas = {
        facts.stable: resize(facts.rs(facts.stable), stable, may_shrink=True),
        facts.canary: resize(facts.rs(facts.canary), count, may_shrink=shrink),
    }
    # Traffic goes back to a dynamic stable only once it is ready to take it.
    held = weight < facts.applied_weight and not stable_ready
    return _Phase(targets, replicas, facts.applied_weight if held else weight, facts.stable)


def _paced(facts: CanaryFacts, targets: dict[str, int], weight: int, stable_role: str) -> _Phase:
    """A basic canary's pods moved toward `targets` (stable first) within its surge and
    unavailability budgets: a total of at most replicas + surge, at least replicas - unavailable
    available."""
    surge, unavailable = fenceposts(*facts.pace, facts.replicas) if facts.pace else (facts.replicas, 0)
    moves = [(facts.rs(revision), target) for revision, target in targets.items()]
    return _Phase(targets, shift(moves, facts.replicas, surge, unavailable), weight, stable_role)


def _hand_over(facts: CanaryFacts, to: str, away: str, holding: int) -> _Phase:
    """The stable Service moves to `to` and the weight goes to 0 (`holding` is the weight until
    then) once `to` is at full size and fully ready; `away` keeps its pods until all that is
    applied and the delay has passed."""
    ready = facts.rs(to).ready >= facts.replicas
    targets, replicas = hand_over(
        facts.rs(to),
        facts.rs(away),
        facts.replicas,
        traffic_left=facts.applied_weight == 0,
        serving=facts.serving,
        allowed=facts.scale_down_allowed,
    )
    return _Phase(targets, replicas, weight=0 if ready else holding, stable_role=to)


def _promote(facts: CanaryFacts) -> _Phase:
    """The canary becomes stable; its traffic stays as it is until it can take all of it. A paced
    basic canary that no Service serves from the stable goes there within its budgets, as Argo's;
    otherwise the canary goes to full size at once and the stable keeps its pods until then."""
    if facts.pace is not None and not facts.traffic_routed and facts.stable not in facts.serving:
        ready = facts.rs(facts.canary).ready >= facts.replicas
        weight = 0 if ready else facts.applied_weight
        return _paced(facts, {facts.stable: 0, facts.canary: facts.replicas}, weight, facts.canary)
    return _hand_over(facts, to=facts.canary, away=facts.stable, holding=facts.applied_weight)


def _abort(facts: CanaryFacts) -> _Phase:
    """Traffic leaves the canary at once (a dynamic stable first grows back to full size and
    readiness); the canary keeps its pods until the stable is at full size and ready."""
    holding = facts.applied_weight if facts.dynamic_stable else 0
    return _hand_over(facts, to=facts.stable, away=facts.canary, holding=holding)


def _desire(facts: CanaryFacts, phase: _Phase) -> Desired:
    """The phase's weight and selectors behind their gates, and every other revision retired."""
    applied = facts.applied_selectors
    # The canary Service changes revision only while it carries no traffic; until it selects the
    # canary revision, no traffic may go through it.
    routed = applied.get(Role.CANARY, facts.canary) == facts.canary
    weight = phase.weight if routed else 0
    can_take = facts.rs(facts.canary).ready >= phase.targets[facts.canary]
    wanted = {Role.STABLE: phase.stable_role, Role.CANARY: facts.canary}
    return Desired(
        replicas=phase.replicas
        | retire_others(facts.observed, phase.replicas, facts.serving, facts.replicas),
        canary_weight=weight if weight <= facts.applied_weight or can_take else facts.applied_weight,
        selectors={
            Role.STABLE: select(
                applied,
                Role.STABLE,
                phase.stable_role,
                ready=facts.rs(phase.stable_role).ready >= phase.targets[phase.stable_role],
                before=facts.stable,
            ),
            Role.CANARY: select(
                applied, Role.CANARY, facts.canary, ready=facts.applied_weight == 0, before=facts.canary
            ),
        },
        done=facts.applied_weight == weight
        and settled(facts.observed, phase.targets)
        and selected(applied, wanted),
    )
