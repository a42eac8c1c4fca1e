"""A released Rollout is left alone: however much time passes, its reconciles decide the same status
byte for byte (so the controller writes nothing), change nothing in the cluster and ask to be woken
for nothing once the delays are over. Every strategy, with and without Services and a router.

The cluster is simulated as the controller sees and changes it (`reconcile` below follows
`RolloutController._reconcile`): the pure decision and `status_of` are the code under test.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.api.rollout import MachineState as State
from delivery.rollout.decide import Decision, Memory, Observed, decide, format_time
from delivery.rollout.plan import Plan, plan_of
from delivery.rollout.status import applied, status_of
from strategies import ReplicaSetState
from strategies.types import Role

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
SECOND, MINUTE, HOUR = (datetime.timedelta(seconds=n) for n in (1, 60, 3600))
# The measured loop's pace (a reconcile a second), then minutes, then hours and a day.
IDLE = (SECOND, SECOND, SECOND, 10 * SECOND, MINUTE, 5 * MINUTE, HOUR, 12 * HOUR, 24 * HOUR)
TICKS = 400  # more reconciles than any release here needs
TIMES = ("pauseStartTime", "trafficMovedTime", "progressTime")
STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]


@dataclass
class World:
    """The cluster as one reconcile sees and changes it. `services` holds the Services that exist,
    each with the revision it selects (None: none of the rollout's, as a Service fresh from kubectl)."""

    plan: Plan
    services: dict[Role, str | None]
    replicasets: dict[str, ReplicaSetState] = field(default_factory=dict)  # oldest first
    weight: int = 0  # the router's
    status: dict[str, Any] = field(default_factory=dict)
    # The controller-manager behind: a scaled-down ReplicaSet counts its pods going only as they ripen.
    lagging: bool = False

    @property
    def routed(self) -> bool:
        """The controller asks the router for the weight only when it has a route (both Services)."""
        return self.plan.router is not None and {Role.STABLE, Role.CANARY} <= self.plan.services.keys()

    def traffic(self) -> tuple[int, dict[Role, str | None]]:
        return self.weight, dict(self.services)

    def reconcile(self, revision: str, now: datetime.datetime) -> Decision:
        """Observe, decide, act and report as the controller does (the status from what was observed,
        the ReplicaSets counted as the decision's writes leave them)."""
        applied_weight = self.weight if self.routed else (self.status.get("weights") or {}).get("canary", 0)
        observed = tuple(self.replicasets.values())
        decision = decide(
            Observed(
                plan=self.plan,
                revision=revision,
                memory=Memory.from_status(self.status),
                replicasets=observed,
                applied_weight=applied_weight,
                applied_selectors={role: rev for role, rev in self.services.items() if rev is not None},
                commands={},
                now=now,
            )
        )
        desired = decision.desired
        scaled = applied(observed, desired.replicas, revision)  # as act.scale leaves them
        self.replicasets = {
            rs.revision: rs if self.lagging else replace(rs, ready=min(rs.ready, rs.replicas))
            for rs in scaled
        }
        for role in self.services:
            if role in desired.selectors:
                self.services[role] = desired.selectors[role]
        if self.routed:
            self.weight = desired.canary_weight
        self.status = status_of(
            self.status,
            decision,
            generation=1,
            replicasets=scaled,
            replicas=self.plan.replicas,
            selector="app=web",
            now=format_time(now),
        )
        return decision

    def ripen(self, pods: int) -> None:
        """Up to `pods` more pods of each ReplicaSet become ready (and every pod scaled away is gone)."""
        for rev, rs in self.replicasets.items():
            self.replicasets[rev] = ReplicaSetState(rev, rs.replicas, min(rs.replicas, rs.ready + pods))

    def released(self, revision: str) -> bool:
        """Healthy on `revision`, every pod of it ready, every other revision gone, and so reported."""
        full = self.plan.replicas
        return (
            self.status.get("state") == State.HEALTHY.value
            and self.status.get("stableRevision") == revision
            and all(rs.settled(full if rs.revision == revision else 0) for rs in self.replicasets.values())
            and self.status["replicas"] == self.status["readyReplicas"] == full
        )


def without_times(status: dict[str, Any]) -> dict[str, Any]:
    """The status as facts: its times left out."""
    facts = {key: value for key, value in status.items() if key not in TIMES}
    facts["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions", [])
    ]
    return facts


def release(
    world: World, revision: str, now: datetime.datetime, tick: datetime.timedelta, pace: int
) -> datetime.datetime:
    """Reconcile until `revision` is released; the time of the last reconcile. On the way, times
    alone change the status only in a reconcile that moves traffic, and `trafficMovedTime` says when."""
    for _ in range(TICKS):
        before, traffic = world.status, world.traffic()
        world.reconcile(revision, now)
        moved = world.weight != traffic[0] or any(
            world.services[role] != was for role, was in traffic[1].items() if was is not None
        )
        if world.status != before and without_times(world.status) == without_times(before):
            assert moved, f"the clock alone changed the status at {now}"
        if moved:
            assert world.status["trafficMovedTime"] == format_time(now)
        if world.released(revision):
            return now
        world.ripen(pace)
        now += tick
    pytest.fail(f"{revision} not released: {world.status}")


def assert_idle(world: World, revision: str, start: datetime.datetime) -> None:
    """Reconciles at any later time: the same status byte for byte, nothing changed, no wake-up."""
    now = start
    decision = None
    for delta in IDLE:
        now += delta
        before, replicasets, traffic = json.dumps(world.status), dict(world.replicasets), world.traffic()
        decision = world.reconcile(revision, now)
        assert json.dumps(world.status) == before, f"{delta} later"
        assert (world.replicasets, world.traffic()) == (replicasets, traffic)
        assert decision.transition is None
    assert decision is not None
    assert decision.requeue_after is None  # a day later every delay is over


def spec(strategy: dict[str, Any], replicas: int = 2) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a"}]}},
        "strategy": strategy,
    }


CANARY_SERVICES = {"stableService": "web-stable", "canaryService": "web-canary"}
NGINX = {"trafficRouting": {"nginx": {"stableIngress": "web"}}}
RELEASED: dict[str, tuple[dict[str, Any], set[Role]]] = {
    # strategy, and the roles whose Service exists in the cluster
    "rolling": ({"rolling": {}}, set()),
    "canary, basic, no Services": ({"canary": {"steps": STEPS}}, set()),
    "canary, basic, both Services": (
        {"canary": {"steps": STEPS, **CANARY_SERVICES}},
        {Role.STABLE, Role.CANARY},
    ),
    "canary, the stable Service only": ({"canary": {"steps": STEPS, "stableService": "web"}}, {Role.STABLE}),
    "canary, Services named but absent": ({"canary": {"steps": STEPS, **CANARY_SERVICES}}, set()),
    "canary, nginx": ({"canary": {"steps": STEPS, **CANARY_SERVICES, **NGINX}}, {Role.STABLE, Role.CANARY}),
    "blue-green, active only": ({"blueGreen": {"activeService": "web"}}, {Role.ACTIVE}),
    "blue-green, active and preview": (
        {"blueGreen": {"activeService": "web", "previewService": "web-preview"}},
        {Role.ACTIVE, Role.PREVIEW},
    ),
    "blue-green, preview absent": (
        {"blueGreen": {"activeService": "web", "previewService": "web-preview"}},
        {Role.ACTIVE},
    ),
}


@pytest.mark.parametrize("name", RELEASED)
def test_a_released_rollout_decides_the_same_status_whenever_it_is_reconciled(name: str) -> None:
    strategy, existing = RELEASED[name]
    world = World(plan_of(spec(strategy)), services=dict.fromkeys(existing))
    release(world, "one", T0, SECOND, pace=2)  # the first revision: no steps
    released = release(world, "two", T0 + HOUR, SECOND, pace=1)
    assert_idle(world, "two", released)


def test_the_measured_loop_a_basic_canary_without_services_keeps_its_traffic_time() -> None:
    """The bug as measured: no Service, so nothing is applied; the time of the last move stays."""
    world = World(plan_of(spec({"canary": {"steps": STEPS}})), services={})
    release(world, "one", T0, SECOND, pace=2)
    released = release(world, "two", T0 + HOUR, SECOND, pace=2)
    moved = world.status["trafficMovedTime"]
    world.reconcile("two", released + SECOND)
    assert world.status["trafficMovedTime"] == moved


def test_a_real_move_is_still_dated_and_the_old_revision_waits_its_delay() -> None:
    """Blue-green's switch moves the active Service: stamped, and the old pods go only after the delay."""
    world = World(
        plan_of(spec({"blueGreen": {"activeService": "web", "scaleDownDelaySeconds": 30}})),
        services={Role.ACTIVE: None},
    )
    release(world, "one", T0, SECOND, pace=2)
    now = T0 + HOUR
    for _ in range(TICKS):
        world.reconcile("two", now)
        if world.services[Role.ACTIVE] == "two":
            break
        world.ripen(2)
        now += SECOND
    switched = now
    assert world.status["trafficMovedTime"] == format_time(switched)
    for _ in range(TICKS):
        now += SECOND
        world.reconcile("two", now)
        if not world.replicasets["one"].replicas:
            break
    assert now - switched == 30 * SECOND


# Hypothesis: any plan of any strategy, any Services present, any pace of pods and reconciles.

BG_ROLES = {Role.ACTIVE: "activeService", Role.PREVIEW: "previewService"}
CANARY_ROLES = {Role.STABLE: "stableService", Role.CANARY: "canaryService"}


@st.composite
def canary_step(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"setWeight": draw(st.integers(0, 100))}
    return {"pause": {"duration": f"{draw(st.integers(0, 20))}s"}}


@st.composite
def worlds(draw: st.DrawFn) -> World:
    kind = draw(st.sampled_from(["rolling", "canary", "blueGreen"]))
    delay = draw(st.integers(0, 60))
    strategy: dict[str, Any]
    if kind == "rolling":
        strategy, named = {}, set()
    elif kind == "canary":
        named = draw(st.sets(st.sampled_from(list(CANARY_ROLES))))
        strategy = {
            "steps": draw(st.lists(canary_step(), min_size=1, max_size=5)),
            "scaleDownDelaySeconds": delay,
            "abortScaleDownDelaySeconds": delay,
            **{CANARY_ROLES[role]: f"web-{role.value}" for role in named},
        }
        if named == set(CANARY_ROLES) and draw(st.booleans()):
            strategy |= NGINX
    else:
        named = {Role.ACTIVE} | draw(st.sets(st.just(Role.PREVIEW)))
        strategy = {
            **{BG_ROLES[role]: f"web-{role.value}" for role in named},
            "scaleDownDelaySeconds": delay,
            "previewReplicaCount": draw(st.none() | st.integers(1, 5)),
        }
    existing = draw(st.sets(st.sampled_from(sorted(named)))) if named else set()
    return World(plan_of(spec({kind: strategy}, draw(st.integers(1, 5)))), services=dict.fromkeys(existing))


@settings(max_examples=150, deadline=None)
@given(
    world=worlds(),
    tick=st.integers(1, 30).map(lambda n: n * SECOND),
    pace=st.integers(1, 5),
)
def test_any_released_rollout_is_left_alone(world: World, tick: datetime.timedelta, pace: int) -> None:
    release(world, "one", T0, tick, pace)
    released = release(world, "two", T0 + HOUR, tick, pace)
    assert_idle(world, "two", released)
