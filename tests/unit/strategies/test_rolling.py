"""The rolling update resolves its budgets as Kubernetes does and never drops below what it allows."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import Desired, IntOrPercent, ReplicaSetState, RollingFacts, decide_rolling, fenceposts
from tests.unit.strategies.simulation import Cluster, modest, reconcile, replicaset


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        pytest.param("25%", "25%", 10, (3, 2), id="surge-up-unavailable-down"),
        pytest.param("25%", "25%", 1, (1, 0), id="one-replica"),
        pytest.param(0, "10%", 5, (0, 1), id="both-round-to-zero"),
        pytest.param(1, 0, 3, (1, 0), id="surge-only"),
        pytest.param(0, 1, 3, (0, 1), id="unavailable-only"),
        pytest.param(2, 5, 3, (2, 3), id="unavailable-capped"),
        pytest.param("200%", "100%", 4, (8, 4), id="surge-above-100"),
        pytest.param("25%", "25%", 0, (0, 0), id="zero-replicas"),
    ],
)
def test_fenceposts(
    surge: IntOrPercent, unavailable: IntOrPercent, replicas: int, expected: tuple[int, int]
) -> None:
    assert fenceposts(surge, unavailable, replicas) == expected


@pytest.mark.parametrize(
    ("surge", "unavailable"),
    [(0, 0), ("0%", "0%"), (0, "0%"), ("00%", 0), (-1, 1), (1, "101%"), ("25", 1), ("-5%", 1), (1, " 5%")],
)
def test_invalid_budgets_are_refused(surge: IntOrPercent, unavailable: IntOrPercent) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every message names the offending value
        RollingFacts(replicas=4, new="b", max_surge=surge, max_unavailable=unavailable)


def test_negative_replicas_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        RollingFacts(replicas=-1, new="b")


def decide(replicas: int, *observed: ReplicaSetState) -> Desired:
    return decide_rolling(RollingFacts(replicas, "new", observed, max_surge=1, max_unavailable=1))


def test_first_release_creates_the_new_revision_at_full_size() -> None:
    assert decide(4) == Desired(replicas={"new": 4}, done=False)


def test_a_release_starts_by_surging_and_taking_one_old_pod() -> None:
    desired = decide(4, ReplicaSetState("old", 4, 4))
    assert desired.replicas == {"old": 3, "new": 1}
    assert not desired.done


def test_old_pods_go_only_as_new_ones_become_ready() -> None:
    assert decide(4, ReplicaSetState("old", 3, 3), ReplicaSetState("new", 2, 0)).replicas == {
        "old": 3,
        "new": 2,
    }
    assert decide(4, ReplicaSetState("old", 3, 3), ReplicaSetState("new", 2, 2)).replicas == {
        "old": 1,
        "new": 2,
    }


def test_done_once_the_new_revision_alone_is_ready() -> None:
    assert not decide(4, ReplicaSetState("old", 0, 0), ReplicaSetState("new", 4, 3)).done
    finished = decide(4, ReplicaSetState("old", 0, 0), ReplicaSetState("new", 4, 4))
    assert finished == Desired(replicas={"old": 0, "new": 4}, done=True)


def test_every_old_revision_goes_and_the_oldest_first() -> None:
    desired = decide(4, ReplicaSetState("a", 2, 2), ReplicaSetState("b", 2, 2), ReplicaSetState("new", 1, 1))
    assert desired.replicas == {"a": 0, "b": 2, "new": 1}


budgets = st.one_of(st.integers(0, 3), st.integers(0, 100).map(lambda p: f"{p}%"))


@st.composite
def rollouts(draw: st.DrawFn) -> RollingFacts:
    replicas = draw(st.integers(0, 8))
    surge, unavailable = draw(budgets), draw(budgets)
    try:
        fenceposts(surge, unavailable, replicas)
    except ValueError:
        surge = 1
    olds = [draw(replicaset(f"old{i}", 8)) for i in range(draw(st.integers(0, 3)))]
    new = draw(replicaset("new", 8))
    observed = draw(st.permutations([*olds, new]))
    return RollingFacts(replicas, "new", tuple(observed), surge, unavailable)


@modest
@given(rollouts())
def test_deciding_twice_gives_the_same(facts: RollingFacts) -> None:
    assert decide_rolling(facts) == decide_rolling(facts)


@modest
@given(rollouts(), st.integers(1, 3))
def test_converges_without_dropping_below_the_allowed_availability(facts: RollingFacts, pace: int) -> None:
    surge, unavailable = fenceposts(facts.max_surge, facts.max_unavailable, facts.replicas)

    def decide(facts: RollingFacts) -> Desired:
        desired = decide_rolling(facts)
        before = sum(rs.replicas for rs in facts.observed)
        assert sum(desired.replicas.values()) <= max(before, facts.replicas + surge)
        return desired

    cluster = Cluster({rs.revision: rs for rs in facts.observed})
    reconcile(
        facts,
        cluster,
        decide=decide,
        advance=lambda _: None,
        observe=lambda facts, cluster: replace(facts, observed=cluster.observed),
        pace=pace,
        floor=facts.replicas - unavailable,
    )
    assert all(rs.settled(facts.replicas if rs.revision == "new" else 0) for rs in cluster.observed)
