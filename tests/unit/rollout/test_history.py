"""Bounded history: which old ReplicaSets go once there are more than revisionHistoryLimit."""

from __future__ import annotations

from typing import Any

from delivery.api.rollout import MachineState as State
from delivery.rollout.decide import Decision, Memory
from delivery.rollout.history import Entry, beyond_limit, entry_of, expired
from delivery.rollout.plan import plan_of
from delivery.rollout.revision import HASH_LABEL
from strategies import Desired


def idle(*revisions: str) -> list[Entry]:
    return [Entry(revision) for revision in revisions]


def test_old_ones_beyond_the_limit_go_oldest_first() -> None:
    history = idle("r1", "r2", "r3", "r4", "r5", "r6")
    assert expired(history, limit=3, stable="r6", current="r6", desired={}) == ("r1", "r2")


def test_within_the_limit_nothing_goes() -> None:
    history = idle("r1", "r2", "r3", "r4")
    assert expired(history, limit=3, stable="r4", current="r4", desired={}) == ()
    assert expired(history, limit=10, stable="r4", current="r4", desired={}) == ()


def test_the_limit_counts_only_old_revisions_not_the_stable_nor_the_current() -> None:
    history = idle("r1", "r2", "r3", "r4", "r5")  # r1 stable, r5 the canary: three old between
    assert expired(history, limit=3, stable="r1", current="r5", desired={}) == ()
    assert expired(history, limit=2, stable="r1", current="r5", desired={}) == ("r2",)


def test_never_the_stable_even_when_it_is_the_oldest_and_idle() -> None:
    """A basic canary at setWeight 100 leaves the stable revision with no pods: still not history."""
    history = idle("r1", "r2", "r3")
    assert expired(history, limit=0, stable="r1", current="r3", desired={"r3": 1}) == ("r2",)


def test_never_the_current_revision_even_when_it_is_the_oldest() -> None:
    """A rollback to the first template: its ReplicaSet is the oldest and current again."""
    history = idle("r1", "r2", "r3")
    assert expired(history, limit=0, stable="r3", current="r1", desired={}) == ("r2",)


def test_none_that_still_has_pods_or_is_still_scaling_down() -> None:
    history = [
        Entry("r1", replicas=1, pods=1),  # still serving
        Entry("r2", replicas=0, pods=1),  # scaled down, its pod still terminating
        Entry("r3", replicas=0, pods=0, observed=False),  # scaled down, not yet seen by its controller
        Entry("r4"),
        Entry("r5"),
    ]
    assert expired(history, limit=0, stable="r5", current="r5", desired={}) == ("r4",)


def test_none_whose_scale_down_delay_is_pending() -> None:
    """The decision still gives it pods (its delay has not passed), whatever was observed."""
    history = idle("r1", "r2", "r3")
    assert expired(history, limit=0, stable="r3", current="r3", desired={"r1": 2, "r2": 0}) == ("r2",)


def test_a_busy_old_one_is_skipped_not_replaced_by_a_newer_one() -> None:
    """Deleting r2 in r1's place would leave two old ones, not three, once r1 goes too."""
    history = [Entry("r1", replicas=1, pods=1), *idle("r2", "r3", "r4", "r5")]
    assert expired(history, limit=3, stable="r5", current="r5", desired={}) == ()
    settled = [Entry("r1"), *idle("r2", "r3", "r4", "r5")]
    assert expired(settled, limit=3, stable="r5", current="r5", desired={}) == ("r1",)


def test_one_already_being_deleted_is_neither_counted_nor_deleted_again() -> None:
    history = [Entry("r1", deleting=True), *idle("r2", "r3", "r4", "r5")]
    assert expired(history, limit=3, stable="r5", current="r5", desired={}) == ()


def test_deciding_again_after_the_deletions_deletes_nothing_more() -> None:
    history = idle(*(f"r{n}" for n in range(1, 16)))
    doomed = expired(history, limit=3, stable="r15", current="r15", desired={})
    assert doomed == tuple(f"r{n}" for n in range(1, 12))
    left = [entry for entry in history if entry.revision not in doomed]
    assert expired(left, limit=3, stable="r15", current="r15", desired={}) == ()


def replicaset(revision: str, created: str, replicas: int = 0, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"web-{revision}",
            "labels": {HASH_LABEL: revision},
            "creationTimestamp": created,
            "generation": 2,
        },
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 2, "replicas": replicas, **status},
    }


def test_an_entry_reads_spec_status_and_whether_its_controller_caught_up() -> None:
    assert entry_of(replicaset("a", "2026-01-01T00:00:00Z")) == Entry("a")
    lagging = replicaset("a", "2026-01-01T00:00:00Z", observedGeneration=1)
    assert entry_of(lagging) == Entry("a", observed=False)
    terminating = replicaset("a", "2026-01-01T00:00:00Z", replicas=1)
    terminating["spec"]["replicas"] = 0
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    assert entry_of(terminating) == Entry("a", replicas=0, pods=1, deleting=True)
    assert entry_of({"metadata": {"labels": {HASH_LABEL: "b"}}, "spec": {}}) == Entry(
        "b", replicas=1, observed=False
    )


SPEC = {
    "replicas": 1,
    "revisionHistoryLimit": 1,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}}},
    "strategy": {"rolling": {}},
}


def test_replicasets_are_ordered_by_creation_then_name_whatever_order_they_come_in() -> None:
    """Creation times have a one-second resolution: a tie goes by name, as in Argo Rollouts."""
    plan = plan_of(SPEC)
    assert plan.revision_history_limit == 1
    decision = Decision(Memory(State.HEALTHY, stable="d", revision="d"), Desired({"d": 1}))
    objects = [
        replicaset("d", "2026-01-01T00:00:09Z", replicas=1),
        replicaset("c", "2026-01-01T00:00:05Z"),
        replicaset("b", "2026-01-01T00:00:01Z"),
        replicaset("a", "2026-01-01T00:00:01Z"),
        {"metadata": {"name": "unlabelled", "labels": {}}, "spec": {"replicas": 0}},
    ]
    doomed = beyond_limit(objects, plan.revision_history_limit, decision)
    assert [rs["metadata"]["name"] for rs in doomed] == ["web-a", "web-b"]
    assert beyond_limit(objects, 10, decision) == []


def test_the_default_limit_is_ten_as_in_argo_rollouts() -> None:
    plan = plan_of({key: value for key, value in SPEC.items() if key != "revisionHistoryLimit"})
    assert plan.revision_history_limit == 10
