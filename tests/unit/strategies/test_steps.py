"""What is in force at a step: the last SetWeight and SetCanaryScale at or before it."""

from __future__ import annotations

import pytest

from strategies import Analysis, Pause, SetCanaryScale, SetWeight, Step
from strategies.steps import canary_replicas_at, weight_at

STEPS: tuple[Step, ...] = (
    Pause(),
    SetWeight(20),
    Analysis(),
    SetCanaryScale(replicas=4),
    SetWeight(50),
    SetCanaryScale(weight=90),
    SetCanaryScale(match_traffic_weight=True),
    SetWeight(5),
)


@pytest.mark.parametrize(
    ("index", "weight", "canary"),
    [
        pytest.param(0, 0, 0, id="before-any-weight"),
        pytest.param(1, 20, 2, id="weight-share-rounded-up"),
        pytest.param(2, 20, 2, id="analysis-keeps-weight"),
        pytest.param(3, 20, 4, id="scale-by-count"),
        pytest.param(4, 50, 4, id="count-outlives-weight-change"),
        pytest.param(5, 50, 9, id="scale-by-percentage"),
        pytest.param(6, 50, 5, id="back-to-matching-weight"),
        pytest.param(7, 5, 1, id="small-weight-still-one-pod"),
        pytest.param(8, 5, 1, id="after-the-last-step"),
    ],
)
def test_in_force_at_step(index: int, weight: int, canary: int) -> None:
    assert weight_at(STEPS, index) == weight
    assert canary_replicas_at(STEPS, index, 10) == canary


@pytest.mark.parametrize("weight", [-1, 101])
def test_weights_outside_0_to_100_are_refused(weight: int) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        SetWeight(weight)
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        SetCanaryScale(weight=weight)


@pytest.mark.parametrize(
    "scale",
    [
        {},
        {"replicas": 1, "weight": 10},
        {"replicas": 1, "match_traffic_weight": True},
        {"weight": 10, "match_traffic_weight": True},
    ],
)
def test_set_canary_scale_takes_exactly_one_setting(scale: dict[str, int | bool]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SetCanaryScale(**scale)  # type: ignore[arg-type]


def test_set_canary_scale_refuses_negative_replicas() -> None:
    with pytest.raises(ValueError, match="negative"):
        SetCanaryScale(replicas=-1)
