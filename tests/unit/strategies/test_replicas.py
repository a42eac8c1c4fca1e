"""Shares of a total, and the Deployment's surge and availability budgets applied to any targets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies.replicas import percent_of, shift
from strategies.types import ReplicaSetState
from tests.unit.strategies.simulation import modest, replicaset


@pytest.mark.parametrize(
    ("total", "percent", "up", "down"),
    [(10, 25, 3, 2), (10, 20, 2, 2), (1, 1, 1, 0), (0, 50, 0, 0), (3, 100, 3, 3), (4, 150, 6, 6)],
)
def test_percent_of_rounds_either_way(total: int, percent: int, up: int, down: int) -> None:
    assert percent_of(total, percent, round_up=True) == up
    assert percent_of(total, percent, round_up=False) == down


def rs(revision: str, replicas: int, ready: int) -> ReplicaSetState:
    return ReplicaSetState(revision, replicas, ready)


@pytest.mark.parametrize(
    ("moves", "replicas", "surge", "unavailable", "expected"),
    [
        pytest.param(
            [(rs("old", 10, 10), 0), (rs("new", 0, 0), 10)], 10, 3, 2, {"old": 8, "new": 3}, id="start"
        ),
        pytest.param(
            [(rs("old", 8, 8), 0), (rs("new", 3, 0), 10)], 10, 3, 2, {"old": 8, "new": 5}, id="surge-left"
        ),
        pytest.param(
            [(rs("old", 8, 8), 0), (rs("new", 5, 5), 10)], 10, 3, 2, {"old": 3, "new": 5}, id="new-ready"
        ),
        pytest.param(
            [(rs("old", 10, 6), 0), (rs("new", 0, 0), 10)], 10, 3, 2, {"old": 8, "new": 3}, id="unready-first"
        ),
        pytest.param(
            [(rs("a", 4, 4), 0), (rs("b", 4, 4), 0), (rs("new", 2, 2), 10)],
            10,
            0,
            2,
            {"a": 2, "b": 4, "new": 2},
            id="oldest-first",
        ),
        pytest.param(
            [(rs("old", 0, 0), 0), (rs("new", 10, 10), 10)], 10, 3, 2, {"old": 0, "new": 10}, id="finished"
        ),
        pytest.param(
            [(rs("stable", 10, 10), 5), (rs("canary", 0, 0), 5)],
            10,
            10,
            0,
            {"stable": 10, "canary": 5},
            id="no-unavailable-surges-first",
        ),
        pytest.param(
            [(rs("stable", 10, 10), 5), (rs("canary", 5, 3), 5)],
            10,
            10,
            0,
            {"stable": 7, "canary": 5},
            id="gives-up-what-is-ready-elsewhere",
        ),
        pytest.param([(rs("old", 3, 3), 0), (rs("new", 0, 0), 0)], 0, 0, 0, {"old": 0, "new": 0}, id="zero"),
    ],
)
def test_shift(
    moves: list[tuple[ReplicaSetState, int]],
    replicas: int,
    surge: int,
    unavailable: int,
    expected: dict[str, int],
) -> None:
    assert shift(moves, replicas, surge, unavailable) == expected


@st.composite
def moves(draw: st.DrawFn) -> list[tuple[ReplicaSetState, int]]:
    count = draw(st.integers(1, 4))
    return [(draw(replicaset(f"r{i}", 10)), draw(st.integers(0, 10))) for i in range(count)]


@modest
@given(moves(), st.integers(0, 10), st.integers(0, 5), st.integers(0, 5))
def test_shift_stays_within_both_budgets(
    moves: list[tuple[ReplicaSetState, int]], replicas: int, surge: int, unavailable: int
) -> None:
    desired = shift(moves, replicas, surge, unavailable)
    for rs, target in moves:
        assert min(rs.replicas, target) <= desired[rs.revision] <= max(rs.replicas, target)
    before = sum(rs.replicas for rs, _ in moves)
    assert sum(desired.values()) <= max(before, replicas + surge)
    ready_before = sum(rs.ready for rs, _ in moves)
    ready_after = sum(min(rs.ready, desired[rs.revision]) for rs, _ in moves)
    assert ready_after >= min(ready_before, replicas - unavailable)
