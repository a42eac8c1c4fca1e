"""The plugin's tree: what a person sees of a Rollout, as plain text."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from delivery.cli.tree import rollout_tree
from delivery.dashboard.summary import describe_step
from delivery.rollout.experiment import EXPERIMENT_LABEL
from delivery.rollout.revision import HASH_LABEL

STEPS = [{"setWeight": 20}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {}}]


def replicaset(revision: str, image: str, desired: int, ready: int, created: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"web-{revision}",
            "labels": {HASH_LABEL: revision},
            "creationTimestamp": created,
        },
        "spec": {"replicas": desired, "template": {"spec": {"containers": [{"image": image}]}}},
        "status": {"replicas": ready, "readyReplicas": ready},
    }


def rollout(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "generation": 2},
        "spec": {"strategy": {"canary": {"steps": STEPS}}},
        "status": {"observedGeneration": 2, **status},
    }


def text(tree: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(tree)
    return out.getvalue()


def test_a_paused_canary_shows_step_weights_and_both_revisions_newest_first() -> None:
    shown = text(
        rollout_tree(
            rollout(
                phase="Paused",
                currentStepIndex=3,
                stableRevision="aaa",
                canaryRevision="bbb",
                weights={"stable": 50, "canary": 50},
                message="waiting to be promoted",
            ),
            [
                replicaset("aaa", "web:1", 4, 4, "2026-11-25T08:00:00Z"),
                replicaset("bbb", "web:2", 2, 1, "2026-11-25T09:00:00Z"),
            ],
        )
    )
    assert "rollout shop/web  Paused  canary" in shown
    assert "step 3/4: pause (until promoted)" in shown
    assert "traffic: stable 50%, canary 50%" in shown
    assert "waiting to be promoted" in shown
    canary_line, stable_line = (line for line in shown.splitlines() if "web-" in line)
    for shown_on_canary in ("bbb canary", "1/2 ready", "web:2"):
        assert shown_on_canary in canary_line
    for shown_on_stable in ("aaa stable", "4/4 ready", "web:1"):
        assert shown_on_stable in stable_line


def test_old_revisions_with_nothing_running_are_left_out() -> None:
    shown = text(
        rollout_tree(
            rollout(phase="Healthy", stableRevision="bbb"),
            [
                replicaset("aaa", "web:1", 0, 0, "2026-11-25T08:00:00Z"),
                replicaset("bbb", "web:2", 4, 4, "2026-11-25T09:00:00Z"),
            ],
        )
    )
    assert "web-bbb" in shown
    assert "web-aaa" not in shown


def test_the_latest_analyses_are_listed_with_their_outcome() -> None:
    history = [
        {"name": f"run-{i}", "revision": "bbb", "stepIndex": 2, "phase": "Successful"} for i in range(7)
    ]
    history.append({"name": "errors", "revision": "bbb", "phase": "Failed", "message": "0.2 > 0.05"})
    shown = text(rollout_tree(rollout(phase="Aborted", analysisHistory=history), []))
    assert "errors (background, bbb) Failed  0.2 > 0.05" in shown
    assert "run-6 (step 2, bbb) Successful" in shown
    assert "run-2" not in shown  # only the latest five


def test_a_spec_the_controller_has_not_seen_is_flagged() -> None:
    stale = rollout(phase="Healthy")
    stale["status"]["observedGeneration"] = 1
    assert "has not seen the latest spec" in text(rollout_tree(stale, []))


@pytest.mark.parametrize(
    ("step", "said"),
    [
        ({"setWeight": 20}, "setWeight 20"),
        ({"pause": {"duration": "1m"}}, "pause 1m"),
        ({"pause": {}}, "pause (until promoted)"),
        ({"analysis": {"templates": [{"templateName": "errors"}]}}, "analysis errors"),
        ({"setCanaryScale": {"replicas": 2}}, "setCanaryScale replicas=2"),
        (
            {"experiment": {"duration": "1h", "templates": [{"name": "b", "specRef": "stable"}]}},
            "experiment b (stable) for 1h",
        ),
    ],
)
def test_steps_read_as_they_are_written(step: dict[str, Any], said: str) -> None:
    assert describe_step(step) == said


def test_a_restart_in_progress_is_said_until_done() -> None:
    restarting = rollout(phase="Healthy", stableRevision="aaa")
    restarting["spec"]["restartAt"] = "2026-11-25T10:00:00Z"
    assert "restart: replacing the pods made before 2026-11-25T10:00:00Z" in text(
        rollout_tree(restarting, [])
    )
    restarting["status"]["restartedAt"] = "2026-11-25T10:00:00Z"
    assert "restart" not in text(rollout_tree(restarting, []))


def test_each_revision_shows_the_configuration_copies_it_uses() -> None:
    stable, canary = (
        replicaset("aaa", "web:1", 3, 3, "2026-11-25T08:00:00Z"),
        replicaset("bbb", "web:1", 1, 1, "2026-11-25T09:00:00Z"),
    )
    for rs in (stable, canary):
        revision = rs["metadata"]["labels"][HASH_LABEL]
        rs["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
            {"configMapRef": {"name": f"app-{revision}"}},
            {"secretRef": {"name": "untracked"}},
        ]
        rs["spec"]["template"]["spec"]["volumes"] = [
            {"name": "db", "secret": {"secretName": f"db-{revision}"}}
        ]
    shown = text(
        rollout_tree(rollout(phase="Paused", stableRevision="aaa", canaryRevision="bbb"), [stable, canary])
    )
    lines = [line.strip(" │├└─") for line in shown.splitlines()]
    canary_at, stable_at = (
        next(i for i, line in enumerate(lines) if line.startswith(f"{revision} "))
        for revision in ("bbb", "aaa")
    )
    assert lines[canary_at + 1 : canary_at + 3] == ["ConfigMap app: app-bbb", "Secret db: db-bbb"]
    assert lines[stable_at + 1 : stable_at + 3] == ["ConfigMap app: app-aaa", "Secret db: db-aaa"]
    assert "untracked" not in shown  # used as it is: not a copy of this revision


def test_the_experiment_shows_its_replicasets_apart_from_the_revisions() -> None:
    stable = replicaset("aaa", "web:1", 3, 3, "2026-11-25T08:00:00Z")
    trial = replicaset("eee", "web:1", 2, 1, "2026-11-25T09:00:00Z")
    trial["metadata"]["name"] = "web-bbb-1-baseline"
    trial["metadata"]["labels"][EXPERIMENT_LABEL] = "baseline"
    templates = [
        {"name": "baseline", "replicaSet": "web-bbb-1-baseline", "podTemplateHash": "eee", "replicas": 2},
        {"name": "canary", "replicaSet": "web-bbb-1-canary", "podTemplateHash": "fff", "replicas": 2},
    ]
    experiment = {"revision": "bbb", "stepIndex": 1, "phase": "Pending", "templates": templates}
    shown = text(
        rollout_tree(
            rollout(phase="Progressing", stableRevision="aaa", experiment=experiment), [stable, trial]
        )
    )
    lines = [line.strip(" │├└─") for line in shown.splitlines()]
    at = next(i for i, line in enumerate(lines) if line.startswith("experiment (step 1, bbb) Pending"))
    assert lines[at + 1] == "eee baseline  web-bbb-1-baseline  1/2 ready  web:1"
    assert lines[at + 2] == "fff canary    web-bbb-1-canary  not made yet"
    assert not any(line.startswith("eee old") for line in lines)  # not a revision
    ended = {**experiment, "phase": "Successful"}
    assert "web-bbb-1-canary  deleted" in text(rollout_tree(rollout(phase="Healthy", experiment=ended), []))
