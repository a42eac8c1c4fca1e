"""A routed canary with Argo's dynamicStableScale: the stable shrinks to the share of traffic it still
takes, and never has fewer pods than that share; a release and an abort both still converge."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from strategies import CanaryFacts, Desired, Pause, ReplicaSetState, SetWeight, Step, decide_canary
from strategies.replicas import percent_of
from strategies.types import Role
from tests.unit.strategies.simulation import Cluster, modest, reconcile
from tests.unit.strategies.test_canary_properties import advance, observer

SERVICES = {Role.STABLE: "s", Role.CANARY: "c"}


@st.composite
def dynamic(draw: st.DrawFn) -> CanaryFacts:
    """A routed canary about to start, its stable at full size and ready, at any step of its steps."""
    replicas = draw(st.integers(1, 8))
    steps: tuple[Step, ...] = tuple(
        draw(
            st.lists(
                st.one_of(st.builds(SetWeight, st.integers(0, 100)), st.just(Pause())), min_size=1, max_size=4
            )
        )
    )
    return CanaryFacts(
        replicas=replicas,
        steps=steps,
        index=0,
        stable="s",
        canary="c",
        observed=(ReplicaSetState("s", replicas, replicas),),
        applied_selectors=SERVICES,
        traffic_routed=True,
        dynamic_stable=True,
    )


def walk(facts: CanaryFacts, pace: int, *, abort_at: int | None = None) -> tuple[CanaryFacts, Cluster]:
    cluster = Cluster({"s": facts.observed[0]}, selectors=dict(SERVICES))
    ticks = 0

    def decide(facts: CanaryFacts) -> Desired:
        nonlocal ticks
        desired = decide_canary(facts)
        if facts.applied_selectors.get(Role.STABLE) == "s":
            # The stable never has fewer pods than the traffic it takes now, and traffic goes back
            # to it only once it has the ready pods to take it.
            assert desired.replicas["s"] >= percent_of(
                facts.replicas, 100 - facts.applied_weight, round_up=True
            )
            if desired.canary_weight < facts.applied_weight and desired.selectors[Role.STABLE] == "s":
                needed = percent_of(facts.replicas, 100 - desired.canary_weight, round_up=True)
                assert find_ready(facts, "s") >= needed
        ticks += 1
        return desired

    def advance_or_abort(facts: CanaryFacts) -> CanaryFacts | None:
        if abort_at is not None and ticks >= abort_at and not facts.aborted and facts.stable != facts.canary:
            return replace(facts, aborted=True)
        return advance(facts)

    final = reconcile(
        facts, cluster, decide=decide, advance=advance_or_abort, observe=observer(0), pace=pace, floor=0
    )
    return final, cluster


def find_ready(facts: CanaryFacts, revision: str) -> int:
    return next((rs.ready for rs in facts.observed if rs.revision == revision), 0)


@modest
@given(dynamic(), st.integers(1, 3))
def test_a_dynamic_release_converges_to_the_new_revision(facts: CanaryFacts, pace: int) -> None:
    final, cluster = walk(facts, pace)
    assert final.stable == "c"
    assert all(rs.settled(facts.replicas if rs.revision == "c" else 0) for rs in cluster.observed)
    assert cluster.weight == 0


@modest
@given(dynamic(), st.integers(1, 3), st.integers(0, 6))
def test_an_abort_grows_the_stable_back_before_traffic_returns(
    facts: CanaryFacts, pace: int, at: int
) -> None:
    final, cluster = walk(facts, pace, abort_at=at)
    if final.aborted:
        assert all(rs.settled(facts.replicas if rs.revision == "s" else 0) for rs in cluster.observed)
        assert cluster.weight == 0


def test_the_stable_shrinks_only_once_the_weight_has_moved() -> None:
    facts = CanaryFacts(
        replicas=4,
        steps=(SetWeight(50), Pause()),
        index=0,
        stable="s",
        canary="c",
        observed=(ReplicaSetState("s", 4, 4), ReplicaSetState("c", 2, 2)),
        applied_selectors=SERVICES,
        traffic_routed=True,
        dynamic_stable=True,
    )
    before = decide_canary(facts)
    assert (before.replicas["s"], before.canary_weight) == (4, 50)  # the weight moves first
    after = decide_canary(replace(facts, applied_weight=50))
    assert after.replicas["s"] == 2
