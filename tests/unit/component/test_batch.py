"""The pacing of a batch re-render: at most N in flight, name order, halt on the first failure."""

from __future__ import annotations

import datetime

from delivery.component.batch import Batch, Member, awaits_turn, member_of, pace

NOW = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.UTC)
DEADLINE = datetime.timedelta(minutes=2)
OLD, NEW = "rev-old", "rev-new"


def member(
    index: int, revision: str | None = OLD, *, ready: bool = True, ago: float = 10, error: str | None = None
) -> Member:
    at = NOW - datetime.timedelta(seconds=ago)
    return Member(("ns", f"c-{index:02d}"), revision, at, ready, error, at if error else None)


def keys(*indexes: int) -> frozenset[tuple[str, str]]:
    return frozenset(("ns", f"c-{index:02d}") for index in indexes)


def test_a_new_revision_starts_the_first_n_by_name() -> None:
    members = [member(i) for i in reversed(range(12))]
    decision = pace(members, NEW, limit=5, deadline=DEADLINE, now=NOW)
    assert decision.admitted == keys(0, 1, 2, 3, 4)
    assert set(decision.in_flight) == keys(0, 1, 2, 3, 4)
    assert (decision.done, decision.total, decision.halted) == (0, 12, False)


def test_slots_free_up_as_re_rendered_components_become_ready() -> None:
    members = [member(0, NEW), member(1, NEW, ready=False), member(2, NEW, ready=False)] + [
        member(i) for i in range(3, 10)
    ]
    decision = pace(members, NEW, limit=5, deadline=DEADLINE, now=NOW)
    assert decision.admitted == keys(3, 4, 5)
    assert decision.done == 1
    assert len(decision.in_flight) == 5


def test_grants_not_yet_seen_rendered_count_as_in_flight() -> None:
    members = [member(i) for i in range(10)]
    granted = dict.fromkeys(keys(0, 1, 2, 3), NOW)
    decision = pace(members, NEW, limit=5, deadline=DEADLINE, now=NOW, granted=granted)
    assert decision.admitted == keys(0, 1, 2, 3, 4)


def test_nothing_more_starts_while_n_are_in_flight() -> None:
    members = [member(i, NEW, ready=False) for i in range(5)] + [member(i) for i in range(5, 9)]
    assert pace(members, NEW, limit=5, deadline=DEADLINE, now=NOW).admitted == frozenset()


def test_a_component_not_ready_within_the_deadline_halts_the_batch() -> None:
    members = [member(0, NEW, ready=False, ago=121), member(1, NEW, ready=False)] + [
        member(i) for i in range(2, 9)
    ]
    decision = pace(members, NEW, limit=5, deadline=DEADLINE, now=NOW)
    assert decision.halted
    assert decision.admitted == frozenset()
    assert decision.failed == ((("ns", "c-00"), "not ready within 120s of its re-render"),)


def test_a_render_refused_after_its_grant_halts_the_batch() -> None:
    members = [member(0, error="template pod.yaml.j2: boom", ago=1), *[member(i) for i in range(1, 9)]]
    granted = {("ns", "c-00"): NOW - datetime.timedelta(seconds=5)}
    decision = pace(members, NEW, limit=5, deadline=DEADLINE, now=NOW, granted=granted)
    assert decision.failed == ((("ns", "c-00"), "render refused: template pod.yaml.j2: boom"),)
    assert decision.admitted == frozenset()


def test_an_error_older_than_the_grant_waits_for_the_deadline() -> None:
    members = [member(0, error="old trouble", ago=60), *[member(i) for i in range(1, 4)]]
    granted = {("ns", "c-00"): NOW - datetime.timedelta(seconds=5)}
    assert not pace(members, NEW, limit=2, deadline=DEADLINE, now=NOW, granted=granted).halted
    members[0] = member(0, error="old trouble", ago=300)
    late = {("ns", "c-00"): NOW - datetime.timedelta(seconds=200)}
    decision = pace(members, NEW, limit=2, deadline=DEADLINE, now=NOW, granted=late)
    assert decision.failed == ((("ns", "c-00"), "not rendered within 120s of its turn: old trouble"),)


def test_a_batch_is_complete_when_all_are_ready_at_the_target() -> None:
    decision = pace([member(i, NEW) for i in range(3)], NEW, limit=1, deadline=DEADLINE, now=NOW)
    assert decision.complete
    assert decision.admitted == frozenset()


def component(name: str, revision: str | None, ready: str, generation: int = 2) -> dict[str, object]:
    return {
        "metadata": {"namespace": "ns", "name": name, "generation": generation},
        "status": {
            "renderedRevision": revision,
            "renderedAt": "2026-11-25T09:59:00Z",
            "conditions": [
                {"type": "Ready", "status": ready, "observedGeneration": 2, "reason": "R"},
                {
                    "type": "Reconciled",
                    "status": "False",
                    "reason": "RenderFailed",
                    "message": "bad",
                    "observedGeneration": 2,
                    "lastTransitionTime": "2026-11-25T09:58:00Z",
                },
            ],
        },
    }


def test_member_of_reads_conditions_of_the_current_generation_only() -> None:
    seen = member_of(component("a", NEW, "True"))
    assert (seen.revision, seen.ready, seen.error) == (NEW, True, "bad")
    assert seen.rendered_at == datetime.datetime(2026, 11, 25, 9, 59, tzinfo=datetime.UTC)
    stale = member_of(component("a", NEW, "True", generation=3))
    assert (stale.ready, stale.error) == (False, None)


def test_the_controllers_batch_keeps_its_grants_until_they_are_rendered() -> None:
    batch = Batch(limit=2, deadline=DEADLINE)
    components = [component(f"c-{i}", OLD, "True") for i in range(4)]
    for c in components:
        c["status"]["conditions"] = []  # type: ignore[index]
    assert batch.decide(components, NEW, NOW).admitted == {("ns", "c-0"), ("ns", "c-1")}
    assert batch.decide(components, NEW, NOW).admitted == {("ns", "c-0"), ("ns", "c-1")}
    components[0]["status"]["renderedRevision"] = NEW  # type: ignore[index]
    assert batch.decide(components, NEW, NOW).admitted == {("ns", "c-1")}  # c-0 rendered, not ready
    assert batch.granted.keys() == {("ns", "c-1")}
    assert batch.decide(components, "rev-newer", NOW).admitted == {("ns", "c-0"), ("ns", "c-1")}


def test_only_a_component_rendered_from_other_inputs_with_its_spec_unchanged_awaits_its_turn() -> None:
    rendered_before = component("a", OLD, "True")
    rendered_before["status"]["observedGeneration"] = 2  # type: ignore[index]
    assert awaits_turn(rendered_before, NEW)
    assert not awaits_turn(rendered_before, OLD)  # rendered from these inputs already
    changed = component("a", OLD, "True", generation=3)
    changed["status"]["observedGeneration"] = 2  # type: ignore[index]
    assert not awaits_turn(changed, NEW)  # its owner changed it: rendered at once
    assert not awaits_turn(component("a", None, "False"), NEW)  # never rendered: rendered at once


def test_a_batch_is_settled_before_it_starts_and_once_complete_for_its_target() -> None:
    batch = Batch(limit=1, deadline=DEADLINE)
    assert batch.settled(NEW)
    components = [component(f"c-{i}", OLD, "True") for i in range(2)]
    batch.decide(components, NEW, NOW)
    assert not batch.settled(NEW)
    for c in components:
        c["status"]["renderedRevision"] = NEW  # type: ignore[index]
    batch.decide(components, NEW, NOW)
    assert batch.settled(NEW)
    assert not batch.settled("rev-newer")  # other inputs: a batch to start


def test_a_component_being_deleted_is_not_paced() -> None:
    """A Component whose namespace is going away (its finalizer not yet removed) is never rendered
    again: counted, it would halt the batch as 'not rendered' once its turn came."""
    batch = Batch(limit=2, deadline=DEADLINE)
    components = [component(f"c-{i}", OLD, "True") for i in range(3)]
    components[0]["metadata"]["deletionTimestamp"] = "2026-11-25T09:59:30Z"  # type: ignore[index]
    decision = batch.decide(components, NEW, NOW)
    assert decision.admitted == {("ns", "c-1"), ("ns", "c-2")}
    assert decision.total == 2
