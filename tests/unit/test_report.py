"""Conditions keep their transition time while unchanged and always carry the generation."""

from __future__ import annotations

from delivery.report import Condition, event_name, merge_conditions


def test_a_new_condition_gets_the_time_and_generation() -> None:
    merged = merge_conditions([], [Condition("Completed", False, "RolloutUpdated", "new revision")], 3, "T1")
    assert merged == [
        {
            "type": "Completed",
            "status": "False",
            "reason": "RolloutUpdated",
            "message": "new revision",
            "lastTransitionTime": "T1",
            "observedGeneration": 3,
        }
    ]


def test_an_unchanged_status_keeps_its_transition_time_but_takes_the_new_generation() -> None:
    first = merge_conditions([], [Condition("Progressing", True, "RolloutUpdated")], 1, "T1")
    second = merge_conditions(first, [Condition("Progressing", True, "RolloutStepCompleted")], 2, "T2")
    assert second[0]["lastTransitionTime"] == "T1"
    assert second[0]["reason"] == "RolloutStepCompleted"
    assert second[0]["observedGeneration"] == 2


def test_a_flip_moves_the_transition_time_and_others_are_kept() -> None:
    first = merge_conditions(
        [],
        [Condition("Progressing", True, "RolloutUpdated"), Condition("Paused", False, "RolloutResumed")],
        1,
        "T1",
    )
    second = merge_conditions(first, [Condition("Paused", True, "RolloutPaused")], 1, "T2")
    by_type = {c["type"]: c for c in second}
    assert by_type["Paused"]["lastTransitionTime"] == "T2"
    assert by_type["Progressing"] == next(c for c in first if c["type"] == "Progressing")


def test_an_event_is_named_by_the_object_its_uid_and_the_sequence() -> None:
    first = {"metadata": {"name": "web", "uid": "0f1e2d3c-aaaa-bbbb-cccc-000000000000"}}
    again = {"metadata": {"name": "web", "uid": "99887766-aaaa-bbbb-cccc-000000000000"}}
    assert event_name(first, 3) == "web.0f1e2d3c.00000003"
    assert event_name(again, 3) != event_name(first, 3)  # re-created under the same name


def test_a_long_name_is_cut_so_the_event_name_fits() -> None:
    body = {"metadata": {"name": "a" * 253, "uid": "0f1e2d3c-aaaa"}}
    name = event_name(body, 0xFFFFFFFF)
    assert len(name) == 253
    assert name.endswith(".0f1e2d3c.ffffffff")
