"""Canary properties over generated facts, and simulated reconciles from any start to the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from strategies import (
    Analysis,
    CanaryFacts,
    Desired,
    Pause,
    ReplicaSetState,
    Role,
    SetCanaryScale,
    SetWeight,
    Step,
    decide_canary,
)
from strategies.steps import canary_replicas_at, weight_at
from strategies.types import find
from tests.unit.strategies.simulation import Cluster, modest, reconcile, replicaset, selectors

REVISIONS = ["s", "c", "o"]  # stable, canary, an older one


def steps(routed: bool) -> st.SearchStrategy[list[Step]]:
    weights = st.integers(0, 100)
    kinds: list[st.SearchStrategy[Step]] = [
        st.builds(SetWeight, weights),
        st.just(Pause()),
        st.just(Analysis()),
    ]
    if routed:
        kinds += [
            st.builds(SetCanaryScale, replicas=st.integers(0, 7)),
            st.builds(SetCanaryScale, weight=weights),
            st.just(SetCanaryScale(match_traffic_weight=True)),
        ]
    return st.lists(st.one_of(kinds), max_size=4)


@st.composite
def canaries(draw: st.DrawFn, routed: bool | None = None) -> CanaryFacts:
    """Any moment of a canary, including ones a controller should never produce."""
    routed = draw(st.booleans()) if routed is None else routed
    replicas = draw(st.integers(0, 6))
    drawn = tuple(draw(steps(routed)))
    observed = [draw(replicaset(revision, replicas)) for revision in REVISIONS]
    return CanaryFacts(
        replicas=replicas,
        steps=drawn,
        index=draw(st.integers(0, len(drawn))),
        stable="s",
        canary="c",
        observed=tuple(draw(st.permutations(observed))),
        applied_weight=draw(st.integers(0, 100)),
        applied_selectors=draw(selectors((Role.STABLE, Role.CANARY), REVISIONS)),
        traffic_routed=routed,
        aborted=draw(st.booleans()),
        scale_down_allowed=draw(st.booleans()),
    )


def serving(facts: CanaryFacts) -> set[str]:
    """Recomputed, not trusted: the stable Service's revision, and the canary one's if weighted."""
    applied = facts.applied_selectors
    roles = [Role.STABLE, Role.CANARY] if facts.applied_weight > 0 else [Role.STABLE]
    return {applied[role] for role in roles if role in applied}


def stepping(facts: CanaryFacts) -> bool:
    return facts.stable != facts.canary and not facts.aborted and facts.index < len(facts.steps)


def check_safe(facts: CanaryFacts, desired: Desired) -> None:
    """The order of safety, for one decision."""
    assert 0 <= desired.canary_weight <= 100
    canary = find(facts.observed, facts.canary)
    if desired.canary_weight > facts.applied_weight:
        # Raised only into a canary that selects the canary revision and is ready for the step.
        assert stepping(facts)
        assert facts.applied_selectors.get(Role.CANARY, facts.canary) == facts.canary
        assert canary.ready >= canary_replicas_at(facts.steps, facts.index, facts.replicas)
    if desired.selectors[Role.CANARY] != facts.applied_selectors.get(
        Role.CANARY, desired.selectors[Role.CANARY]
    ):
        assert facts.applied_weight == 0  # the canary Service moves only while it carries nothing
    stable_service = desired.selectors[Role.STABLE]
    if facts.traffic_routed and stable_service != facts.applied_selectors.get(Role.STABLE, stable_service):
        assert find(facts.observed, stable_service).ready >= facts.replicas
    for rs in facts.observed:
        if desired.replicas[rs.revision] >= rs.replicas or not facts.traffic_routed:
            continue
        # Routed: traffic leaves a revision before it loses pods (down to a full set, it needs none).
        lowered = rs.revision == facts.canary and stepping(facts)
        if lowered:
            assert facts.applied_weight <= weight_at(facts.steps, facts.index)
            assert facts.applied_selectors.get(Role.STABLE) != facts.canary
        else:
            assert rs.revision not in serving(facts) or desired.replicas[rs.revision] >= facts.replicas


@modest
@given(canaries())
def test_every_decision_is_in_safe_order(facts: CanaryFacts) -> None:
    check_safe(facts, decide_canary(facts))


@modest
@given(canaries())
def test_deciding_twice_gives_the_same(facts: CanaryFacts) -> None:
    assert decide_canary(facts) == decide_canary(facts)


def advance(facts: CanaryFacts) -> CanaryFacts | None:
    """The machine's part: the next step, then promotion (the canary becomes the stable), then rest."""
    if facts.stable == facts.canary or facts.aborted:
        return None
    if facts.index < len(facts.steps):
        return replace(facts, index=facts.index + 1)
    return replace(facts, stable=facts.canary)


def observer(delay: int) -> Callable[[CanaryFacts, Cluster], CanaryFacts]:
    def observe(facts: CanaryFacts, cluster: Cluster) -> CanaryFacts:
        return replace(
            facts,
            observed=cluster.observed,
            applied_weight=cluster.weight,
            applied_selectors=dict(cluster.selectors),
            scale_down_allowed=cluster.quiet >= delay,
        )

    return observe


def walk(facts: CanaryFacts, pace: int, delay: int) -> tuple[CanaryFacts, Cluster]:
    cluster = Cluster(
        {rs.revision: rs for rs in facts.observed}, facts.applied_weight, dict(facts.applied_selectors)
    )

    def decide(facts: CanaryFacts) -> Desired:
        desired = decide_canary(facts)
        check_safe(facts, desired)
        return desired

    final = reconcile(
        facts,
        cluster,
        decide=decide,
        advance=advance,
        observe=observer(delay),
        pace=pace,
        floor=facts.replicas,  # never fewer ready pods than a full set
    )
    return final, cluster


@modest
@given(canaries(), st.integers(1, 3), st.integers(0, 3))
def test_converges_to_the_new_revision_stable_at_full_size(facts: CanaryFacts, pace: int, delay: int) -> None:
    final, cluster = walk(replace(facts, aborted=False), pace, delay)
    assert final.stable == "c"
    assert all(rs.settled(final.replicas if rs.revision == "c" else 0) for rs in cluster.observed)
    assert cluster.weight == 0
    assert set(cluster.selectors.values()) <= {"c"}


@modest
@given(canaries(), st.integers(1, 3), st.integers(0, 3))
def test_an_abort_converges_back_to_the_stable_at_full_size(
    facts: CanaryFacts, pace: int, delay: int
) -> None:
    final, cluster = walk(replace(facts, aborted=True), pace, delay)
    assert final.stable == "s"
    assert all(rs.settled(final.replicas if rs.revision == "s" else 0) for rs in cluster.observed)
    assert cluster.weight == 0
    assert cluster.selectors.get(Role.STABLE, "s") == "s"


@modest
@given(canaries(routed=True))
def test_the_routed_stable_is_never_below_full_size_while_it_serves(facts: CanaryFacts) -> None:
    desired = decide_canary(facts)
    if "s" in serving(facts):
        assert desired.replicas["s"] >= min(find(facts.observed, "s").replicas, facts.replicas)


def test_a_full_canary_walks_every_step_in_order() -> None:
    services = {Role.STABLE: "s", Role.CANARY: "s"}
    start = CanaryFacts(
        replicas=4,
        steps=(SetWeight(25), Pause(), SetWeight(75)),
        index=0,
        stable="s",
        canary="c",
        observed=(ReplicaSetState("s", 4, 4),),
        applied_selectors=services,
    )
    weights: list[int] = []

    def decide(facts: CanaryFacts) -> Desired:
        desired = decide_canary(facts)
        if not weights or weights[-1] != desired.canary_weight:
            weights.append(desired.canary_weight)
        return desired

    cluster = Cluster({"s": ReplicaSetState("s", 4, 4)}, 0, dict(services))
    final = reconcile(start, cluster, decide=decide, advance=advance, observe=observer(0), pace=4, floor=4)
    assert final.stable == "c"
    assert weights == [0, 25, 75, 0]
    assert cluster.observed == (ReplicaSetState("s", 0, 0), ReplicaSetState("c", 4, 4))
    assert cluster.selectors == {Role.STABLE: "c", Role.CANARY: "c"}
