"""Blue-green: each rule on its own, then properties and simulated reconciles from any start."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import BlueGreenFacts, Desired, ReplicaSetState, Role, decide_bluegreen
from strategies.types import find
from tests.unit.strategies.simulation import Cluster, modest, reconcile, replicaset, selectors

ON_STABLE = {Role.ACTIVE: "s", Role.PREVIEW: "s"}
PREVIEWING = {Role.ACTIVE: "s", Role.PREVIEW: "n"}
ON_NEW = {Role.ACTIVE: "n", Role.PREVIEW: "n"}


def facts(*observed: ReplicaSetState, **overrides: Any) -> BlueGreenFacts:
    """Four replicas, stable "s", new "n", the preview Service already on the new revision."""
    defaults: dict[str, Any] = {
        "replicas": 4,
        "stable": "s",
        "new": "n",
        "observed": observed,
        "applied_selectors": PREVIEWING,
    }
    return BlueGreenFacts(**(defaults | overrides))


def s(replicas: int, ready: int | None = None) -> ReplicaSetState:
    return ReplicaSetState("s", replicas, replicas if ready is None else ready)


def n(replicas: int, ready: int | None = None) -> ReplicaSetState:
    return ReplicaSetState("n", replicas, replicas if ready is None else ready)


class TestBeforePromotion:
    def test_the_new_revision_starts_at_full_size_beside_the_stable(self) -> None:
        desired = decide_bluegreen(facts(s(4), applied_selectors=ON_STABLE))
        assert desired == Desired({"s": 4, "n": 4}, 0, ON_STABLE, done=False)

    def test_the_preview_service_moves_once_the_new_revision_is_ready(self) -> None:
        waiting = facts(s(4), n(2, 1), preview_replicas=2, applied_selectors=ON_STABLE)
        assert decide_bluegreen(waiting) == Desired({"s": 4, "n": 2}, 0, ON_STABLE, done=False)
        ready = facts(s(4), n(2), preview_replicas=2, applied_selectors=ON_STABLE)
        assert decide_bluegreen(ready) == Desired({"s": 4, "n": 2}, 0, PREVIEWING, done=False)

    def test_the_new_revision_shrinks_to_its_preview_size_only_once_production_is_on_the_stable(self) -> None:
        stray = facts(s(4), n(4), preview_replicas=2, applied_selectors=ON_NEW)
        assert decide_bluegreen(stray) == Desired({"s": 4, "n": 4}, 0, PREVIEWING, done=False)
        assert decide_bluegreen(replace(stray, applied_selectors=PREVIEWING)).replicas == {"s": 4, "n": 2}

    def test_done_once_previewing(self) -> None:
        assert decide_bluegreen(facts(s(4), n(2), preview_replicas=2)).done


class TestPromotion:
    def test_the_new_revision_grows_to_full_size_before_the_switch(self) -> None:
        desired = decide_bluegreen(facts(s(4), n(2), preview_replicas=2, promote=True))
        assert desired == Desired({"n": 4, "s": 4}, 0, PREVIEWING, done=False)

    def test_the_active_service_switches_once_the_new_revision_is_fully_ready(self) -> None:
        assert decide_bluegreen(facts(s(4), n(4, 3), promote=True)).selectors == PREVIEWING
        assert decide_bluegreen(facts(s(4), n(4), promote=True)).selectors == ON_NEW

    @pytest.mark.parametrize(
        ("applied", "allowed"),
        [
            pytest.param(PREVIEWING, True, id="not-switched"),
            pytest.param(ON_NEW, False, id="delay-not-passed"),
        ],
    )
    def test_the_old_revision_keeps_its_pods_until_switched_and_the_delay_passed(
        self, applied: dict[Role, str], allowed: bool
    ) -> None:
        held = facts(s(4), n(4), promote=True, applied_selectors=applied, scale_down_allowed=allowed)
        assert decide_bluegreen(held).replicas == {"n": 4, "s": 4}

    def test_the_old_revision_goes_after_the_delay_then_done(self) -> None:
        after = facts(s(4), n(4), promote=True, applied_selectors=ON_NEW, scale_down_allowed=True)
        assert decide_bluegreen(after) == Desired({"n": 4, "s": 0}, 0, ON_NEW, done=False)
        assert decide_bluegreen(facts(s(0), n(4), promote=True, applied_selectors=ON_NEW)).done


class TestAbort:
    def test_both_services_return_to_the_stable_before_the_new_revision_goes(self) -> None:
        aborted = facts(s(4), n(4), aborted=True, applied_selectors=ON_NEW, scale_down_allowed=True)
        assert decide_bluegreen(aborted) == Desired({"s": 4, "n": 4}, 0, ON_STABLE, done=False)

    def test_the_stable_is_back_at_full_size_and_ready_first(self) -> None:
        aborted = facts(s(0), n(4), aborted=True, applied_selectors=ON_NEW, scale_down_allowed=True)
        assert decide_bluegreen(aborted) == Desired({"s": 4, "n": 4}, 0, ON_NEW, done=False)

    def test_the_new_revision_goes_after_the_delay_then_done(self) -> None:
        held = facts(s(4), n(4), aborted=True, applied_selectors=ON_STABLE)
        assert decide_bluegreen(held).replicas == {"s": 4, "n": 4}
        after = replace(held, scale_down_allowed=True)
        assert decide_bluegreen(after).replicas == {"s": 4, "n": 0}
        assert decide_bluegreen(facts(s(4), n(0), aborted=True, applied_selectors=ON_STABLE)).done


class TestOtherRevisions:
    def test_steady_when_the_new_revision_is_the_stable(self) -> None:
        steady = facts(s(4), new="s", applied_selectors=ON_STABLE)
        assert decide_bluegreen(steady) == Desired({"s": 4}, 0, ON_STABLE, done=True)

    def test_a_superseded_preview_goes_once_the_preview_service_has_left_it(self) -> None:
        superseded = facts(s(4), n(4), ReplicaSetState("m", 0, 0), new="m")
        assert decide_bluegreen(superseded).replicas == {"s": 4, "m": 4, "n": 4}
        moved = replace(superseded, applied_selectors={Role.ACTIVE: "s", Role.PREVIEW: "m"})
        assert decide_bluegreen(moved).replicas == {"s": 4, "m": 4, "n": 0}


@pytest.mark.parametrize(
    ("overrides", "message"), [({"replicas": -1}, "negative"), ({"preview_replicas": -1}, "negative")]
)
def test_impossible_facts_are_refused(overrides: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        facts(**overrides)


REVISIONS = ["s", "n", "o"]  # stable, new, an older one


@st.composite
def bluegreens(draw: st.DrawFn) -> BlueGreenFacts:
    """Any moment of a blue-green rollout, including ones a controller should never produce."""
    replicas = draw(st.integers(0, 6))
    observed = [draw(replicaset(revision, replicas)) for revision in REVISIONS]
    return BlueGreenFacts(
        replicas=replicas,
        stable="s",
        new="n",
        observed=tuple(draw(st.permutations(observed))),
        applied_selectors=draw(selectors((Role.ACTIVE, Role.PREVIEW), REVISIONS)),
        preview_replicas=draw(st.none() | st.integers(0, replicas)),
        promote=draw(st.booleans()),
        aborted=draw(st.booleans()),
        scale_down_allowed=draw(st.booleans()),
    )


def check_safe(facts: BlueGreenFacts, desired: Desired) -> None:
    applied = facts.applied_selectors
    active = desired.selectors[Role.ACTIVE]
    if active != applied.get(Role.ACTIVE, active):
        assert find(facts.observed, active).ready >= facts.replicas  # production moves only to a full set
    for rs in facts.observed:
        if desired.replicas[rs.revision] < rs.replicas:
            # A revision loses pods only after production traffic has left it (down to a full set).
            assert rs.revision != applied.get(Role.ACTIVE) or desired.replicas[rs.revision] >= facts.replicas


@modest
@given(bluegreens())
def test_every_decision_is_in_safe_order(facts: BlueGreenFacts) -> None:
    check_safe(facts, decide_bluegreen(facts))


@modest
@given(bluegreens())
def test_deciding_twice_gives_the_same(facts: BlueGreenFacts) -> None:
    assert decide_bluegreen(facts) == decide_bluegreen(facts)


def advance(facts: BlueGreenFacts) -> BlueGreenFacts | None:
    """The machine's part: promote once previewing is done, then the new revision is the stable."""
    if facts.stable == facts.new or facts.aborted:
        return None
    return replace(facts, stable=facts.new) if facts.promote else replace(facts, promote=True)


def walk(facts: BlueGreenFacts, pace: int, delay: int) -> tuple[BlueGreenFacts, Cluster]:
    cluster = Cluster({rs.revision: rs for rs in facts.observed}, 0, dict(facts.applied_selectors))

    def decide(facts: BlueGreenFacts) -> Desired:
        desired = decide_bluegreen(facts)
        check_safe(facts, desired)
        return desired

    def observe(facts: BlueGreenFacts, cluster: Cluster) -> BlueGreenFacts:
        return replace(
            facts,
            observed=cluster.observed,
            applied_selectors=dict(cluster.selectors),
            scale_down_allowed=cluster.quiet >= delay,
        )

    final = reconcile(
        facts, cluster, decide=decide, advance=advance, observe=observe, pace=pace, floor=facts.replicas
    )
    return final, cluster


@modest
@given(bluegreens(), st.integers(1, 3), st.integers(0, 3))
def test_converges_to_the_new_revision_active_at_full_size(
    facts: BlueGreenFacts, pace: int, delay: int
) -> None:
    final, cluster = walk(replace(facts, aborted=False), pace, delay)
    assert final.stable == "n"
    assert all(rs.settled(final.replicas if rs.revision == "n" else 0) for rs in cluster.observed)
    assert set(cluster.selectors.values()) <= {"n"}


@modest
@given(bluegreens(), st.integers(1, 3), st.integers(0, 3))
def test_an_abort_converges_back_to_the_stable_at_full_size(
    facts: BlueGreenFacts, pace: int, delay: int
) -> None:
    final, cluster = walk(replace(facts, aborted=True), pace, delay)
    assert final.stable == "s"
    assert all(rs.settled(final.replicas if rs.revision == "s" else 0) for rs in cluster.observed)
    assert set(cluster.selectors.values()) <= {"s"}
