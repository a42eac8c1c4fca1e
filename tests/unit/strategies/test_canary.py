"""Each canary rule on its own: one decision from one set of facts."""

from __future__ import annotations

from typing import Any

import pytest

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

STEPS: tuple[Step, ...] = (SetWeight(20), Pause(), SetWeight(50), Analysis())
BOTH = {Role.STABLE: "s", Role.CANARY: "c"}


def facts(*observed: ReplicaSetState, **overrides: Any) -> CanaryFacts:
    """Ten replicas, stable "s", canary "c", both Services selecting as they should."""
    defaults: dict[str, Any] = {
        "replicas": 10,
        "steps": STEPS,
        "index": 0,
        "stable": "s",
        "canary": "c",
        "observed": observed,
        "applied_selectors": BOTH,
    }
    return CanaryFacts(**(defaults | overrides))


def s(replicas: int, ready: int | None = None) -> ReplicaSetState:
    return ReplicaSetState("s", replicas, replicas if ready is None else ready)


def c(replicas: int, ready: int | None = None) -> ReplicaSetState:
    return ReplicaSetState("c", replicas, replicas if ready is None else ready)


class TestSteps:
    def test_canary_is_scaled_up_before_any_traffic(self) -> None:
        assert decide_canary(facts(s(10))) == Desired({"s": 10, "c": 2}, 0, BOTH, done=False)

    def test_weight_waits_for_every_canary_pod_of_the_step(self) -> None:
        assert decide_canary(facts(s(10), c(2, 1))).canary_weight == 0
        assert decide_canary(facts(s(10), c(2, 1), applied_weight=10)).canary_weight == 10

    def test_weight_is_raised_once_the_canary_is_ready(self) -> None:
        assert decide_canary(facts(s(10), c(2))) == Desired({"s": 10, "c": 2}, 20, BOTH, done=False)

    def test_done_once_the_weight_is_applied(self) -> None:
        assert decide_canary(facts(s(10), c(2), applied_weight=20)).done

    def test_pause_and_analysis_hold_the_last_weight(self) -> None:
        for index, weight in ((1, 20), (3, 50)):
            held = facts(s(10), c(weight // 10), index=index, applied_weight=weight)
            assert decide_canary(held) == Desired({"s": 10, "c": weight // 10}, weight, BOTH, done=True)

    def test_the_stable_stays_at_full_size_while_routed(self) -> None:
        assert decide_canary(facts(s(10), c(5), index=2, applied_weight=50)).replicas == {"s": 10, "c": 5}

    def test_a_lower_weight_goes_first_and_the_canary_shrinks_after(self) -> None:
        lower = {"steps": (SetWeight(50), SetWeight(20)), "index": 1}
        first = decide_canary(facts(s(10), c(5), applied_weight=50, **lower))
        assert (first.canary_weight, first.replicas, first.done) == (20, {"s": 10, "c": 5}, False)
        then = decide_canary(facts(s(10), c(5), applied_weight=20, **lower))
        assert (then.canary_weight, then.replicas, then.done) == (20, {"s": 10, "c": 2}, False)

    def test_the_canary_shrinks_only_while_the_stable_can_take_its_traffic(self) -> None:
        lower = {"steps": (SetWeight(50), SetWeight(20)), "index": 1, "applied_weight": 20}
        assert decide_canary(facts(s(10, 9), c(5), **lower)).replicas == {"s": 10, "c": 5}

    def test_the_canary_keeps_its_pods_while_the_stable_service_selects_it(self) -> None:
        lower = {"steps": (SetWeight(50), SetWeight(20)), "index": 1, "applied_weight": 20}
        stray = {Role.STABLE: "c", Role.CANARY: "c"}
        desired = decide_canary(facts(s(10), c(5), applied_selectors=stray, **lower))
        assert (desired.replicas, desired.selectors) == ({"s": 10, "c": 5}, BOTH)

    @pytest.mark.parametrize(
        ("scale", "canary"),
        [
            (SetCanaryScale(replicas=3), 3),
            (SetCanaryScale(weight=50), 5),
            (SetCanaryScale(match_traffic_weight=True), 0),
        ],
    )
    def test_set_canary_scale_sizes_the_canary_apart_from_its_weight(
        self, scale: SetCanaryScale, canary: int
    ) -> None:
        desired = decide_canary(facts(s(10), steps=(scale, SetWeight(20)), index=0))
        assert (desired.replicas, desired.canary_weight) == ({"s": 10, "c": canary}, 0)

    def test_a_scaled_canary_takes_the_weight_at_its_own_size(self) -> None:
        steps = (SetCanaryScale(replicas=1), SetWeight(50))
        assert decide_canary(facts(s(10), c(1), steps=steps, index=1)).canary_weight == 50


class TestBasic:
    """No router: traffic follows pods, so the weight is approximated by the replica split."""

    def test_the_canary_surges_first(self) -> None:
        desired = decide_canary(facts(s(10), traffic_routed=False))
        assert (desired.replicas, desired.canary_weight) == ({"s": 10, "c": 2}, 0)

    def test_the_stable_gives_up_what_the_ready_canary_carries(self) -> None:
        assert decide_canary(facts(s(10), c(2, 1), traffic_routed=False)).replicas == {"s": 9, "c": 2}
        desired = decide_canary(facts(s(10), c(2), traffic_routed=False))
        assert (desired.replicas, desired.canary_weight) == ({"s": 8, "c": 2}, 20)

    def test_done_at_the_split(self) -> None:
        assert decide_canary(facts(s(8), c(2), applied_weight=20, traffic_routed=False)).done

    def test_a_lower_weight_grows_the_stable_before_the_canary_shrinks(self) -> None:
        lower = {"steps": (SetWeight(50), SetWeight(20)), "index": 1, "traffic_routed": False}
        assert decide_canary(facts(s(5), c(5), applied_weight=50, **lower)).replicas == {"s": 8, "c": 5}
        assert decide_canary(facts(s(8, 6), c(5), applied_weight=20, **lower)).replicas == {"s": 8, "c": 4}

    def test_set_canary_scale_needs_a_router(self) -> None:
        with pytest.raises(ValueError, match="traffic routing"):
            facts(steps=(SetCanaryScale(replicas=1),), traffic_routed=False)


class TestPromotion:
    def test_the_canary_grows_to_full_size_keeping_its_weight(self) -> None:
        desired = decide_canary(facts(s(10), c(5), index=4, applied_weight=50))
        assert desired == Desired({"c": 10, "s": 10}, 50, BOTH, done=False)

    def test_the_stable_service_moves_once_the_canary_is_fully_ready(self) -> None:
        assert decide_canary(facts(s(10), c(10, 9), index=4, applied_weight=50)).selectors == BOTH
        desired = decide_canary(facts(s(10), c(10), index=4, applied_weight=50))
        assert desired == Desired({"c": 10, "s": 10}, 0, {Role.STABLE: "c", Role.CANARY: "c"}, done=False)

    @pytest.mark.parametrize(
        ("weight", "stable_service", "allowed"),
        [
            pytest.param(50, "c", True, id="weight-not-yet-0"),
            pytest.param(0, "s", True, id="service-not-yet-moved"),
            pytest.param(0, "c", False, id="delay-not-passed"),
        ],
    )
    def test_the_old_stable_keeps_its_pods_until_traffic_has_left_and_the_delay_passed(
        self, weight: int, stable_service: str, allowed: bool
    ) -> None:
        applied = {Role.STABLE: stable_service, Role.CANARY: "c"}
        held = facts(
            s(10),
            c(10),
            index=4,
            applied_weight=weight,
            applied_selectors=applied,
            scale_down_allowed=allowed,
        )
        assert decide_canary(held).replicas == {"c": 10, "s": 10}

    def test_the_old_stable_goes_after_the_delay(self) -> None:
        moved = {Role.STABLE: "c", Role.CANARY: "c"}
        after = facts(s(10), c(10), index=4, applied_selectors=moved, scale_down_allowed=True)
        assert decide_canary(after) == Desired({"c": 10, "s": 0}, 0, moved, done=False)
        assert decide_canary(facts(s(0), c(10), index=4, applied_selectors=moved)).done

    def test_without_services_only_readiness_and_the_delay_gate_the_old_stable(self) -> None:
        promoted = facts(
            s(5), c(10), index=4, applied_selectors={}, traffic_routed=False, scale_down_allowed=True
        )
        assert decide_canary(promoted).replicas == {"c": 10, "s": 0}


class TestAbort:
    def test_traffic_leaves_the_canary_first(self) -> None:
        desired = decide_canary(facts(s(10), c(2), applied_weight=20, aborted=True, scale_down_allowed=True))
        assert desired == Desired({"s": 10, "c": 2}, 0, BOTH, done=False)

    @pytest.mark.parametrize(
        ("stable", "allowed"),
        [
            pytest.param(s(10, 9), True, id="stable-not-ready"),
            pytest.param(s(10), False, id="delay-not-passed"),
        ],
    )
    def test_the_canary_keeps_its_pods_until_the_stable_takes_over_and_the_delay_passed(
        self, stable: ReplicaSetState, allowed: bool
    ) -> None:
        held = facts(stable, c(2), aborted=True, scale_down_allowed=allowed)
        assert decide_canary(held).replicas == {"s": 10, "c": 2}

    def test_the_canary_goes_to_zero_then_done(self) -> None:
        assert decide_canary(facts(s(10), c(2), aborted=True, scale_down_allowed=True)).replicas == {
            "s": 10,
            "c": 0,
        }
        assert decide_canary(facts(s(10), c(0), aborted=True)).done

    def test_a_stable_scaled_down_in_basic_mode_grows_back_first(self) -> None:
        aborted = facts(s(8), c(2), aborted=True, traffic_routed=False, scale_down_allowed=True)
        assert decide_canary(aborted).replicas == {"s": 10, "c": 2}

    def test_after_the_stable_service_moved_it_moves_back_once_the_stable_is_ready(self) -> None:
        moved = {Role.STABLE: "c", Role.CANARY: "c"}
        aborted = facts(s(5), c(10), index=4, aborted=True, applied_selectors=moved, traffic_routed=False)
        assert decide_canary(aborted).selectors == moved
        assert (
            decide_canary(facts(s(10), c(10), index=4, aborted=True, applied_selectors=moved)).selectors
            == BOTH
        )


class TestOtherRevisions:
    def test_steady_when_the_canary_is_the_stable(self) -> None:
        steady = facts(s(10), canary="s", applied_selectors={Role.STABLE: "s", Role.CANARY: "s"})
        assert decide_canary(steady) == Desired({"s": 10}, 0, {Role.STABLE: "s", Role.CANARY: "s"}, done=True)

    def test_older_revisions_go_to_zero(self) -> None:
        old = ReplicaSetState("o", 3, 3)
        assert decide_canary(facts(s(10), old)).replicas == {"s": 10, "c": 2, "o": 0}

    def test_an_older_revision_keeps_its_pods_while_they_are_needed(self) -> None:
        old = ReplicaSetState("o", 3, 3)
        basic = facts(s(7), old, canary="s", applied_selectors={}, traffic_routed=False)
        assert decide_canary(basic).replicas == {"s": 10, "o": 3}

    def test_a_rollback_to_the_stable_takes_the_weight_away_before_the_old_canary_goes(self) -> None:
        rollback = {"canary": "s", "aborted": False, "index": 0}
        first = decide_canary(facts(s(10), c(2), applied_weight=20, **rollback))
        assert first == Desired({"s": 10, "c": 2}, 0, BOTH, done=False)
        then = decide_canary(facts(s(10), c(2), **rollback))
        assert then == Desired({"s": 10, "c": 0}, 0, {Role.STABLE: "s", Role.CANARY: "s"}, done=False)

    def test_a_superseded_canary_loses_its_traffic_before_the_service_moves_to_the_new_one(self) -> None:
        superseded = {"canary": "n", "applied_selectors": BOTH}
        first = decide_canary(facts(s(10), c(2), applied_weight=20, **superseded))
        assert first == Desired({"s": 10, "n": 2, "c": 2}, 0, BOTH, done=False)
        ready = ReplicaSetState("n", 2, 2)
        then = decide_canary(facts(s(10), c(2), ready, **superseded))
        assert then == Desired({"s": 10, "n": 2, "c": 0}, 0, {Role.STABLE: "s", Role.CANARY: "n"}, done=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"replicas": -1}, "negative"),
        ({"index": 5}, "step index"),
        ({"index": -1}, "step index"),
        ({"applied_weight": 101}, "applied weight"),
    ],
)
def test_impossible_facts_are_refused(overrides: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        facts(**overrides)
