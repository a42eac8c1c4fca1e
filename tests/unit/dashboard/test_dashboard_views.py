"""The dashboard's views, made from objects as the apiserver sends them: what the page shows."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.dashboard import views
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL

STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"pause": {"duration": "30s"}},
    {"analysis": {"templates": [{"templateName": "errors"}]}},
]


def rollout(status: dict[str, Any], steps: list[dict[str, Any]] = STEPS) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "creationTimestamp": "2026-12-01T10:00:00Z"},
        "spec": {"replicas": 4, "strategy": {"canary": {"steps": steps}}, "template": {"spec": {}}},
        "status": status,
    }


PAUSED = {
    "phase": "Paused",
    "currentStepIndex": 1,
    "pauseStartTime": "2026-12-01T10:05:00Z",
    "stableRevision": "aaa",
    "canaryRevision": "bbb",
    "weights": {"canary": 20, "stable": 80},
    "readyReplicas": 5,
    "message": "paused at step 1",
    "analysisHistory": [
        {
            "name": "errors",
            "kind": "Step",
            "revision": "bbb",
            "stepIndex": 2,
            "phase": "Failed",
            "metrics": [
                {
                    "name": "error-rate",
                    "phase": "Failed",
                    "measurements": [
                        {"phase": "Successful", "value": "[0.01]", "finishedAt": "2026-12-01T10:06:00Z"},
                        {"phase": "Failed", "value": "0.2", "finishedAt": "2026-12-01T10:06:10Z"},
                        {"phase": "Error", "finishedAt": "2026-12-01T10:06:20Z"},
                    ],
                }
            ],
        }
    ],
}


def test_a_row_has_the_list_columns() -> None:
    row = views.rollout_row(rollout(PAUSED))
    assert row == {
        "namespace": "shop",
        "name": "web",
        "strategy": "canary",
        "phase": "Paused",
        "step": "1/3",
        "weight": 20,
        "ready": "5/4",
        "stable": "aaa",
        "canary": "bbb",
        "created": "2026-12-01T10:00:00Z",
    }
    assert tuple(row) == views.ROW_KEYS
    assert views.row_of(views.rollout_view(rollout(PAUSED))) == row


def test_the_timeline_says_done_current_to_come_and_when_the_pause_ends() -> None:
    steps = views.timeline(rollout(PAUSED)["spec"], PAUSED)
    assert [step["state"] for step in steps] == ["done", "current", "to come"]
    assert steps[1] == {"description": "pause 30s", "state": "current", "pauseEndsAt": "2026-12-01T10:05:30Z"}
    assert steps[2]["description"] == "analysis errors"


def test_a_completed_release_has_every_step_done_and_a_new_one_none() -> None:
    completed = {"currentStepIndex": 3, "conditions": [{"type": "Completed", "status": "True"}]}
    assert {s["state"] for s in views.timeline(rollout(completed)["spec"], completed)} == {"done"}
    assert {s["state"] for s in views.timeline(rollout({})["spec"], {})} == {"to come"}


def test_a_pause_until_promoted_has_no_countdown() -> None:
    status = {"currentStepIndex": 0, "pauseStartTime": "2026-12-01T10:05:00Z"}
    (step,) = views.timeline(rollout(status, [{"pause": {}}])["spec"], status)
    assert step == {"description": "pause (until promoted)", "state": "current", "pauseEndsAt": None}


@pytest.mark.parametrize(
    ("value", "number"),
    [("0.5", 0.5), ("[0.01]", 0.01), ("[[3]]", 3.0), ('"ok"', None), ("true", None), ("[]", None),
     (None, None), ("not json", None), ("NaN", None)],
)  # fmt: skip
def test_a_measurement_is_charted_when_it_is_a_number(value: str | None, number: float | None) -> None:
    assert views.measured(value) == number


@pytest.mark.parametrize(
    ("condition", "found"),
    [
        ("result[0] < 0.01", [(0.01, "<")]),
        ("0.01 > result[0]", [(0.01, "<")]),
        ("avg(result) <= 250", [(250.0, "<=")]),
        ("result > -1 and result < 5", [(-1.0, ">"), (5.0, "<")]),
        ("result.ok == true", []),
        ("len(result) > 0 or true", [(0.0, ">")]),
        ("result[", []),  # a syntax error: no threshold, no failure
        ("1 < 2", []),
    ],
)
def test_a_threshold_is_the_number_a_condition_compares_the_result_with(
    condition: str, found: list[tuple[float, str]]
) -> None:
    assert [(t["value"], t["operator"]) for t in views.thresholds(condition, "success")] == found


def test_a_page_joins_revisions_events_weights_and_the_templates_thresholds() -> None:
    view = views.rollout_view(rollout(PAUSED))
    template = {"spec": {"metrics": [{"name": "error-rate", "failureCondition": "result[0] >= 0.05"}]}}
    replicasets = [
        {
            "metadata": {"name": f"web-{rev}", "labels": {HASH_LABEL: rev, ROLLOUT_LABEL: "web"},
                         "creationTimestamp": created},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": f"web:{rev}"}]}}},
            "status": {"readyReplicas": 1},
        }
        for rev, created in (("aaa", "2026-12-01T09:00:00Z"), ("bbb", "2026-12-01T10:04:00Z"), ("old", "1"))
    ]  # fmt: skip
    events = [
        {"metadata": {"name": f"e{n}"}, "reason": f"R{n}", "lastTimestamp": f"2026-12-01T10:0{n}:00Z"}
        for n in range(3)
    ]
    shown = views.page(
        view,
        replicasets=[views.replicaset_view(rs) for rs in replicasets],
        events=[views.event_view(event) for event in events],
        weights=[("2026-12-01T10:04:00Z", 0), ("2026-12-01T10:05:00Z", 20)],
        templates={("shop", "errors"): views.template_view(template)},
        cluster_templates={},
    )
    assert [(rs["revision"], rs["role"], rs["ready"], rs["replicas"]) for rs in shown["replicasets"]] == [
        ("bbb", "canary", 1, 2), ("aaa", "stable", 1, 2), ("old", "old", 1, 2)
    ]  # fmt: skip
    assert [event["reason"] for event in shown["events"]] == ["R2", "R1", "R0"]
    assert shown["weights"][-1] == {"at": "2026-12-01T10:05:00Z", "weight": 20}
    (metric,) = shown["analyses"][0]["metrics"]
    assert [m["value"] for m in metric["measurements"]] == [0.01, 0.2, None]
    assert metric["failureCondition"] == "result[0] >= 0.05"
    assert metric["thresholds"] == [{"value": 0.05, "operator": ">=", "kind": "failure"}]


def test_a_cluster_template_serves_when_the_namespace_has_none() -> None:
    view = views.rollout_view(rollout(PAUSED))
    metric = {"name": "error-rate", "successCondition": "result[0] < 0.1"}
    cluster = {"errors": views.template_view({"spec": {"metrics": [metric]}})}
    (analysis,) = views.with_conditions(view["analyses"], "shop", {}, cluster)
    assert analysis["metrics"][0]["thresholds"][0]["value"] == 0.1
    (unknown,) = views.with_conditions(view["analyses"], "shop", {}, {})
    assert unknown["metrics"][0]["thresholds"] == []


def test_a_component_row_takes_the_release_columns_of_its_rollout() -> None:
    component = {
        "metadata": {"name": "shop", "namespace": "shop", "creationTimestamp": "2026-12-01T09:00:00Z"},
        "status": {
            "objects": [{"apiVersion": "v1", "kind": "Service", "name": "shop"},
                        {"apiVersion": "delivery.luojilab.com/v1alpha1", "kind": "Rollout", "name": "web"}],
            "conditions": [{"type": "Ready", "status": "False", "message": "waiting for pods"}],
        },
    }  # fmt: skip
    view = views.component_view(component)
    assert (view["phase"], view["rollout"], view["message"]) == ("NotReady", "web", "waiting for pods")
    row = views.component_row(view, views.rollout_view(rollout(PAUSED)))
    assert (row["step"], row["weight"], row["stable"], row["canary"]) == ("1/3", 20, "aaa", "bbb")
    alone = views.component_row(views.component_view({"metadata": {"name": "a", "namespace": "b"}}), None)
    assert (alone["phase"], alone["step"]) == ("Unknown", None)
