"""spec.replicas changed in the middle of a release (an HPA, `kubectl scale`): the split follows the
new total at the step in force, traffic stays where it is, and no pods are taken from it first."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from strategies import (
    BlueGreenFacts,
    CanaryFacts,
    Desired,
    Pause,
    ReplicaSetState,
    Role,
    SetCanaryScale,
    SetWeight,
    Step,
    decide_bluegreen,
    decide_canary,
)
from strategies.steps import canary_replicas_at, weight_at
from strategies.types import find
from tests.unit.strategies.simulation import Cluster, F, modest, reconcile

TOTALS = st.integers(1, 12)
CANARY_SERVICES = {Role.STABLE: "s", Role.CANARY: "c"}


def step_lists(routed: bool) -> st.SearchStrategy[list[Step]]:
    kinds: list[st.SearchStrategy[Step]] = [st.builds(SetWeight, st.integers(0, 100)), st.just(Pause())]
    if routed:
        kinds += [
            st.builds(SetCanaryScale, replicas=st.integers(0, 5)),
            st.builds(SetCanaryScale, weight=st.integers(0, 100)),
            st.just(SetCanaryScale(match_traffic_weight=True)),
        ]
    return st.lists(st.one_of(kinds), min_size=1, max_size=4)


def canary_targets(facts: CanaryFacts) -> dict[str, int]:
    """Where a step ends, recomputed from the step's settings: routed, the stable stays at full size."""
    count = canary_replicas_at(facts.steps, facts.index, facts.replicas)
    stable = facts.replicas if facts.traffic_routed else facts.replicas - count
    return {"s": stable, "c": count}


def settled_at(facts: CanaryFacts) -> CanaryFacts:
    """The step `facts.index` reached: both revisions at their targets and ready, the weight applied."""
    targets = canary_targets(facts)
    observed = tuple(ReplicaSetState(revision, n, n) for revision, n in targets.items())
    weight = weight_at(facts.steps, facts.index)
    return replace(facts, observed=observed, applied_weight=weight, applied_selectors=CANARY_SERVICES)


def stay(facts: F) -> None:
    """A rescale is not a step: a simulation ends when the step in force is reached again."""


def observe(facts: CanaryFacts, cluster: Cluster) -> CanaryFacts:
    return replace(
        facts,
        observed=cluster.observed,
        applied_weight=cluster.weight,
        applied_selectors=dict(cluster.selectors),
    )


@st.composite
def rescaled_canaries(draw: st.DrawFn) -> tuple[CanaryFacts, int]:
    """A canary settled at one of its steps at one total, and the total an HPA then sets."""
    routed = draw(st.booleans())
    steps = tuple(draw(step_lists(routed)))
    facts = CanaryFacts(
        replicas=draw(TOTALS),
        steps=steps,
        index=draw(st.integers(0, len(steps) - 1)),
        stable="s",
        canary="c",
        traffic_routed=routed,
    )
    return settled_at(facts), draw(TOTALS)


@modest
@given(rescaled_canaries(), st.integers(1, 3))
def test_a_canary_step_follows_a_new_total_without_moving_traffic(
    start: tuple[CanaryFacts, int], pace: int
) -> None:
    before, total = start
    assert decide_canary(before).done  # settled at the old total: nothing left to do there
    facts = replace(before, replicas=total)
    weight = before.applied_weight
    canary_floor = min(canary_targets(before)["c"], canary_targets(facts)["c"])

    def decide(now: CanaryFacts) -> Desired:
        desired = decide_canary(now)
        assert desired.canary_weight == weight  # the weight in force is the step's, at any total
        assert desired.selectors == CANARY_SERVICES
        # The canary carries its weight: never below what both totals give it at this step.
        assert desired.replicas["c"] >= min(find(now.observed, "c").replicas, canary_floor)
        if now.traffic_routed:
            assert desired.replicas["s"] >= min(find(now.observed, "s").replicas, total)
        return desired

    cluster = Cluster({rs.revision: rs for rs in facts.observed}, weight, dict(CANARY_SERVICES))
    final = reconcile(
        facts,
        cluster,
        decide=decide,
        advance=stay,
        observe=observe,
        pace=pace,
        floor=total,  # ready pods never below the new total (nor below what was ready)
    )
    assert final.index == before.index
    assert {rs.revision: rs.replicas for rs in cluster.observed} == canary_targets(facts)
    assert all(rs.ready == rs.replicas for rs in cluster.observed)


def test_basic_canary_halves_follow_a_scale_up_and_a_scale_down() -> None:
    """Paused at setWeight 50 on 4 pods (2 + 2): to 10 gives 5 + 5, and back to 4 gives 2 + 2."""
    steps: tuple[Step, ...] = (SetWeight(50), Pause())
    paused = settled_at(CanaryFacts(4, steps, 1, "s", "c", traffic_routed=False))
    assert decide_canary(replace(paused, replicas=10)).replicas == {"s": 5, "c": 5}  # both surge at once
    grown = settled_at(replace(paused, replicas=10))
    shrunk = decide_canary(replace(grown, replicas=4))
    assert shrunk.replicas == {"s": 2, "c": 2}  # ten ready: six may go at once, four still serve
    assert shrunk.canary_weight == 50


def test_an_explicit_canary_scale_stays_while_the_routed_stable_follows_the_total() -> None:
    steps: tuple[Step, ...] = (SetCanaryScale(replicas=2), SetWeight(30), Pause())
    paused = settled_at(CanaryFacts(5, steps, 2, "s", "c"))
    assert decide_canary(replace(paused, replicas=9)).replicas == {"s": 9, "c": 2}
    percent = settled_at(CanaryFacts(5, (SetCanaryScale(weight=40), SetWeight(10), Pause()), 2, "s", "c"))
    assert decide_canary(replace(percent, replicas=10)).replicas == {"s": 10, "c": 4}


BLUE_GREEN_SERVICES = {Role.ACTIVE: "s", Role.PREVIEW: "n"}


@modest
@given(TOTALS, TOTALS, st.none() | st.integers(0, 12), st.integers(1, 3))
def test_blue_green_before_promotion_follows_a_new_total(
    before: int, total: int, preview: int | None, pace: int
) -> None:
    """The active revision at the new total, the preview at its own count (unset: the total), and
    the active Service stays on the stable revision all along."""
    size = before if preview is None else preview
    facts = BlueGreenFacts(
        replicas=before,
        stable="s",
        new="n",
        observed=(ReplicaSetState("s", before, before), ReplicaSetState("n", size, size)),
        applied_selectors=BLUE_GREEN_SERVICES,
        preview_replicas=preview,
    )
    assert decide_bluegreen(facts).done
    facts = replace(facts, replicas=total)

    def decide(now: BlueGreenFacts) -> Desired:
        desired = decide_bluegreen(now)
        assert desired.selectors == BLUE_GREEN_SERVICES
        assert desired.replicas["s"] == total  # production's pods follow the total at once
        return desired

    cluster = Cluster({rs.revision: rs for rs in facts.observed}, 0, dict(BLUE_GREEN_SERVICES))
    reconcile(facts, cluster, decide=decide, advance=stay, observe=observe_bg, pace=pace, floor=total)
    expected = {"s": total, "n": total if preview is None else preview}
    assert {rs.revision: rs.replicas for rs in cluster.observed} == expected


def observe_bg(facts: BlueGreenFacts, cluster: Cluster) -> BlueGreenFacts:
    return replace(facts, observed=cluster.observed, applied_selectors=dict(cluster.selectors))


@modest
@given(TOTALS, TOTALS, st.integers(1, 3), st.integers(0, 3))
def test_blue_green_promotion_switches_at_the_new_total(
    before: int, total: int, pace: int, delay: int
) -> None:
    """Rescaled as it is promoted: the active Service moves once the new revision has the new total
    ready, and the old revision keeps its pods until then."""
    facts = BlueGreenFacts(
        replicas=total,
        stable="s",
        new="n",
        observed=(ReplicaSetState("s", before, before), ReplicaSetState("n", before, before)),
        applied_selectors=BLUE_GREEN_SERVICES,
        promote=True,
    )

    def decide(now: BlueGreenFacts) -> Desired:
        desired = decide_bluegreen(now)
        if desired.selectors[Role.ACTIVE] == "n":
            assert find(now.observed, "n").ready >= total
        if now.applied_selectors.get(Role.ACTIVE) == "s":
            assert desired.replicas["s"] >= min(find(now.observed, "s").replicas, total)
        return desired

    cluster = Cluster({rs.revision: rs for rs in facts.observed}, 0, dict(BLUE_GREEN_SERVICES))

    def observed(now: BlueGreenFacts, cluster: Cluster) -> BlueGreenFacts:
        return replace(observe_bg(now, cluster), scale_down_allowed=cluster.quiet >= delay)

    reconcile(facts, cluster, decide=decide, advance=stay, observe=observed, pace=pace, floor=total)
    assert {rs.revision: rs.replicas for rs in cluster.observed} == {"s": 0, "n": total}
    assert cluster.selectors == {Role.ACTIVE: "n", Role.PREVIEW: "n"}
