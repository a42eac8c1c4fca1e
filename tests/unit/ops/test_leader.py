"""The Lease record a replica writes: who holds it, since when, and how often it changed hands."""

from __future__ import annotations

import pytest

from delivery.ops.leader import LeaderElector, LeaseConfig, lease_name


def elector(identity: str = "b") -> LeaderElector:
    return LeaderElector(None, LeaseConfig("lease", "ns", identity), lambda _leading: None)  # type: ignore[arg-type]


HELD_BY_A = {
    "holderIdentity": "a",
    "leaseDurationSeconds": 15,
    "acquireTime": "2026-01-01T00:00:00.000000Z",
    "renewTime": "2026-01-01T00:01:00.000000Z",
    "leaseTransitions": 3,
}
NOW = "2026-01-01T00:02:00.000000Z"


def test_a_new_lease_starts_with_no_transitions() -> None:
    assert elector()._spec({}, NOW) == {
        "holderIdentity": "b",
        "leaseDurationSeconds": 15,
        "acquireTime": NOW,
        "renewTime": NOW,
        "leaseTransitions": 0,
    }


def test_taking_over_counts_a_transition_and_restarts_the_acquire_time() -> None:
    spec = elector("b")._spec(HELD_BY_A, NOW)
    assert (spec["holderIdentity"], spec["acquireTime"], spec["leaseTransitions"]) == ("b", NOW, 4)


def test_renewing_keeps_the_acquire_time_and_the_count() -> None:
    spec = elector("a")._spec(HELD_BY_A, NOW)
    assert (spec["acquireTime"], spec["renewTime"], spec["leaseTransitions"]) == (
        HELD_BY_A["acquireTime"],
        NOW,
        3,
    )


def test_taking_a_released_lease_counts_a_transition() -> None:
    released = {**HELD_BY_A, "holderIdentity": None}
    assert elector("a")._spec(released, NOW)["leaseTransitions"] == 4


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"), [(10, 10, 2), (15, 10, 10), (15, 20, 2), (15, 10, 0)]
)
def test_timings_that_could_make_two_leaders_are_refused(
    duration: float, deadline: float, retry: float
) -> None:
    with pytest.raises(ValueError, match="retry-period < renew-deadline < lease-duration"):
        LeaseConfig("lease", "ns", "a", duration, deadline, retry)


def test_shards_elect_separately() -> None:
    assert lease_name(None) == "delivery-controller"
    assert lease_name("eu") == "delivery-controller-eu"
