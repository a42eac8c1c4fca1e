"""A basic canary paced by maxSurge and maxUnavailable, as Argo Rollouts paces one: every step and the
promotion move pods within both budgets, from the first reconcile to the new revision at full size."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import CanaryFacts, Desired, Pause, ReplicaSetState, SetWeight, Step, decide_canary
from strategies.rolling import fenceposts
from tests.unit.strategies.simulation import Cluster, modest, reconcile
from tests.unit.strategies.test_canary_properties import advance, observer

budgets = st.one_of(st.integers(0, 4), st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


@st.composite
def paced(draw: st.DrawFn) -> CanaryFacts:
    """A basic canary about to start, its stable at full size and ready, with any budgets."""
    replicas = draw(st.integers(1, 8))
    surge, unavailable = draw(budgets), draw(budgets)
    if str(surge) in {"0", "0%"} and str(unavailable) in {"0", "0%"}:
        unavailable = 1
    steps: tuple[Step, ...] = tuple(
        draw(st.lists(st.one_of(st.builds(SetWeight, st.integers(0, 100)), st.just(Pause())), max_size=4))
    )
    return CanaryFacts(
        replicas=replicas,
        steps=steps,
        index=0,
        stable="s",
        canary="c",
        observed=(ReplicaSetState("s", replicas, replicas),),
        traffic_routed=False,
        pace=(surge, unavailable),
    )


@modest
@given(paced(), st.integers(1, 3))
def test_never_above_the_surge_nor_below_the_available_pods(facts: CanaryFacts, pace: int) -> None:
    assert facts.pace is not None
    surge, unavailable = fenceposts(*facts.pace, facts.replicas)
    cluster = Cluster({"s": facts.observed[0]})

    def decide(facts: CanaryFacts) -> Desired:
        desired = decide_canary(facts)
        assert sum(desired.replicas.values()) <= facts.replicas + surge
        return desired

    final = reconcile(
        facts,
        cluster,
        decide=decide,
        advance=advance,
        observe=observer(0),
        pace=pace,
        floor=facts.replicas - unavailable,
    )
    assert final.stable == "c"
    assert all(rs.settled(facts.replicas if rs.revision == "c" else 0) for rs in cluster.observed)


def test_argos_budgets_take_one_pod_at_a_time() -> None:
    """Four replicas with maxSurge 1, maxUnavailable 0: the canary step of 50% adds one pod, the
    stable gives one up only once it is ready."""
    facts = CanaryFacts(
        replicas=4,
        steps=(SetWeight(50),),
        index=0,
        stable="s",
        canary="c",
        observed=(ReplicaSetState("s", 4, 4),),
        traffic_routed=False,
        pace=(1, 0),
    )
    assert decide_canary(facts).replicas == {"s": 4, "c": 1}
    ready = replace(facts, observed=(ReplicaSetState("s", 4, 4), ReplicaSetState("c", 1, 1)))
    assert decide_canary(ready).replicas == {"s": 3, "c": 1}


def test_impossible_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="both be zero"):
        CanaryFacts(replicas=4, steps=(), index=0, stable="s", canary="c", traffic_routed=False, pace=(0, 0))


def test_without_budgets_each_step_surges_at_once() -> None:
    facts = CanaryFacts(
        replicas=4,
        steps=(SetWeight(50),),
        index=0,
        stable="s",
        canary="c",
        observed=(ReplicaSetState("s", 4, 4),),
        traffic_routed=False,
    )
    assert decide_canary(facts).replicas == {"s": 4, "c": 2}
