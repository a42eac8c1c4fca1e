"""What the plugin's commands write and print: list rows, set image, undo, wait."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from delivery.cli.commands import (
    CommandError,
    Goal,
    Outcome,
    age,
    format_restart_at,
    image_patch,
    list_row,
    parse_assignments,
    reached,
    table,
    template_owner,
    undo_target,
    written_template,
)
from delivery.kube.kinds import DEPLOYMENT, ROLLOUT
from delivery.rollout.revision import HASH_LABEL, TEMPLATE_ANNOTATION, replica_set, template_hash

NOW = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "initContainers": [{"name": "setup", "image": "setup:1"}],
        "containers": [{"name": "app", "image": "web:1"}, {"name": "proxy", "image": "proxy:1"}],
    },
}


def rollout(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u1",
            "generation": 3,
            "resourceVersion": "7",
            "creationTimestamp": "2026-12-01T11:55:00Z",
        },
        "spec": {
            "replicas": 4,
            "template": TEMPLATE,
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]}},
        },
        "status": {"observedGeneration": 3, **status},
    }


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (5, "5s"),
        (119, "119s"),
        (200, "3m20s"),
        (180, "3m"),
        (1500, "25m"),
        (5 * 3600 + 600, "5h10m"),
        (20 * 3600, "20h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (40 * 86400, "40d"),
    ],
)
def test_age_as_kubectl_prints_it(seconds: int, shown: str) -> None:
    created = (NOW - datetime.timedelta(seconds=seconds)).isoformat()
    assert age(created, NOW) == shown


def test_a_list_row_says_phase_step_weight_and_revisions() -> None:
    row = list_row(
        rollout(
            phase="Paused",
            currentStepIndex=1,
            weights={"canary": 20},
            readyReplicas=5,
            stableRevision="aaa",
            canaryRevision="bbb",
        ),
        NOW,
    )
    assert row == ("web", "canary", "Paused", "1/3", "20", "5/4", "aaa", "bbb", "5m")
    complete = rollout(
        phase="Healthy", currentStepIndex=0, conditions=[{"type": "Completed", "status": "True"}]
    )
    assert list_row(complete, NOW)[3] == "3/3"
    empty = list_row({"metadata": {"name": "new"}, "spec": {"strategy": {"rolling": {}}}}, NOW)
    assert empty == ("new", "rolling", "Unknown", "-", "-", "0/1", "-", "-", "<unknown>")


def test_a_table_pads_its_columns() -> None:
    assert table(("A", "BB"), [("xxx", "y")]) == "A     BB\nxxx   y"


def test_set_image_replaces_the_named_images_with_a_test_of_each_name() -> None:
    operations = image_patch(TEMPLATE, parse_assignments(["app=web:2", "setup=setup:1"]))
    assert operations == [
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "app"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "web:2"},
    ]  # setup already has its image: nothing written for it
    every = image_patch(TEMPLATE, {"*": "all:9"})
    assert [op["value"] for op in every if op["op"] == "replace"] == ["all:9", "all:9", "all:9"]


def test_set_image_refuses_what_it_cannot_do() -> None:
    with pytest.raises(CommandError, match="no container named db"):
        image_patch(TEMPLATE, {"db": "x", "app": "y"})
    with pytest.raises(CommandError, match="not CONTAINER=IMAGE"):
        parse_assignments(["app"])


def test_the_template_lives_in_the_rollout_or_its_deployment() -> None:
    assert template_owner(rollout()).kind is ROLLOUT
    referenced = rollout()
    referenced["spec"] = {"workloadRef": {"name": "web-deploy"}, "strategy": {}}
    owner = template_owner(referenced)
    assert (owner.kind, owner.name) == (DEPLOYMENT, "web-deploy")
    rendered = rollout()
    rendered["metadata"]["ownerReferences"] = [{"kind": "Component", "name": "web", "controller": True}]
    with pytest.raises(CommandError, match="rendered by Component web"):
        template_owner(rendered)


def history(*images: str) -> list[dict[str, Any]]:
    """ReplicaSets of successive templates, oldest first, as the controller makes them."""
    made = []
    for index, image in enumerate(images):
        template = json.loads(json.dumps(TEMPLATE))
        template["spec"]["containers"][0]["image"] = image
        replicaset = replica_set(rollout(), template, {"app": "web"}, 0)
        replicaset["metadata"]["creationTimestamp"] = f"2026-12-01T11:0{index}:00Z"
        made.append(replicaset)
    return made


def test_undo_writes_back_the_template_as_the_rollout_had_it() -> None:
    replicasets = history("web:1", "web:2")
    # The apiserver fills in defaults in the ReplicaSet's own copy of the template...
    replicasets[0]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    written = written_template(replicasets[0])
    # ... the annotation keeps the Rollout's, which hashes to the same revision again.
    assert template_hash(written) == replicasets[0]["metadata"]["labels"][HASH_LABEL]
    del replicasets[0]["metadata"]["annotations"][TEMPLATE_ANNOTATION]
    assert HASH_LABEL not in written_template(replicasets[0])["metadata"]["labels"]


def test_undo_goes_to_the_stable_revision_mid_release_else_the_newest_other() -> None:
    old, stable, current = history("web:1", "web:2", "web:3")
    template = current["spec"]["template"]
    del template["metadata"]["labels"][HASH_LABEL]
    revision = {rs["metadata"]["name"]: rs["metadata"]["labels"][HASH_LABEL] for rs in (old, stable, current)}
    mid_release = {"stableRevision": revision[stable["metadata"]["name"]]}
    assert undo_target(template, mid_release, [old, stable, current], None) is stable
    done = {"stableRevision": revision[current["metadata"]["name"]]}
    assert undo_target(template, done, [old, stable, current], None) is stable
    assert undo_target(template, done, [old, stable, current], revision[old["metadata"]["name"]]) is old
    with pytest.raises(CommandError, match="no revision nope"):
        undo_target(template, done, [old, current], "nope")
    with pytest.raises(CommandError, match="no earlier revision"):
        undo_target(template, done, [current], None)


def conditions(**true: bool) -> list[dict[str, str]]:
    return [{"type": kind, "status": "True" if value else "False"} for kind, value in true.items()]


@pytest.mark.parametrize(
    ("status", "goal", "outcome"),
    [
        (
            {"phase": "Healthy", "conditions": conditions(Completed=True, Healthy=True)},
            Goal.HEALTHY,
            Outcome.REACHED,
        ),
        ({"phase": "Healthy", "conditions": conditions(Completed=True, Healthy=False)}, Goal.HEALTHY, None),
        (
            {"phase": "Healthy", "conditions": conditions(Completed=True, Healthy=False)},
            Goal.COMPLETED,
            Outcome.REACHED,
        ),
        ({"phase": "Aborted"}, Goal.HEALTHY, Outcome.OTHER),
        ({"phase": "Degraded"}, Goal.PAUSED, Outcome.OTHER),
        ({"phase": "Paused"}, Goal.HEALTHY, None),  # a promotion or a timer moves it on
        ({"phase": "Paused"}, Goal.PAUSED, Outcome.REACHED),
        ({"phase": "Progressing"}, Goal.ABORTED, None),
        ({"phase": "Aborted"}, Goal.ABORTED, Outcome.REACHED),
        (
            {"phase": "Healthy", "conditions": conditions(Completed=True, Healthy=True)},
            Goal.ABORTED,
            Outcome.OTHER,
        ),
        ({"phase": "Healthy", "observedGeneration": 2}, Goal.HEALTHY, None),  # the spec not yet seen
    ],
)
def test_wait_is_done_at_the_goal_or_another_end(
    status: dict[str, Any], goal: Goal, outcome: Outcome | None
) -> None:
    assert reached(rollout(**status), goal) is outcome


def test_restart_at_is_rounded_up_to_the_second() -> None:
    """So a pod made earlier in the same second as the command is older than restartAt."""
    assert format_restart_at(NOW + datetime.timedelta(microseconds=1)) == "2026-12-01T12:00:01Z"
    assert format_restart_at(NOW) == "2026-12-01T12:00:00Z"
