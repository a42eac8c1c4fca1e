"""spec.restartAt: which pod is replaced next, and when the restart is done (Argo's rules)."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from delivery.rollout.plan import plan_of
from delivery.rollout.restart import RESTART_CHECK, PodFacts, Restart, concurrency, pending, plan_restart

AT = "2026-12-01T12:00:00Z"
MOMENT = datetime.datetime.fromisoformat(AT)


def pod(
    name: str, revision: str, minutes: int, *, available: bool = True, deleting: bool = False
) -> PodFacts:
    """A pod made `minutes` after (negative: before) restartAt."""
    return PodFacts(
        name,
        f"uid-{name}",
        revision,
        MOMENT + datetime.timedelta(minutes=minutes),
        available and not deleting,
        deleting,
    )


def decide(
    pods: list[PodFacts],
    *,
    replicas: int = 3,
    concurrent: int = 1,
    scaling: bool = False,
    restarted_at: str | None = None,
) -> Restart:
    return plan_restart(
        restart_at=AT,
        restarted_at=restarted_at,
        pods=pods,
        priority=["stable", "canary"],
        replicas=replicas,
        total=replicas,
        concurrent=concurrent,
        scaling=scaling,
    )


def names(restart: Restart) -> list[str]:
    return [pod.name for pod in restart.evict]


def test_nothing_to_do_without_restart_at_or_once_done() -> None:
    now = MOMENT + datetime.timedelta(hours=1)
    assert pending(None, None, now) == Restart()
    assert pending(AT, AT, now) == Restart(restarted_at=AT)
    assert pending(AT, "2026-12-01T12:00:00+00:00", now) == Restart(restarted_at="2026-12-01T12:00:00+00:00")
    assert pending(AT, None, now) is None  # due: the pods must be looked at


def test_a_restart_to_come_is_waited_for() -> None:
    earlier = MOMENT - datetime.timedelta(seconds=90)
    assert pending(AT, "2026-11-30T00:00:00Z", earlier) == Restart(
        restarted_at="2026-11-30T00:00:00Z", wait=90.0
    )


def test_one_pod_at_a_time_stable_first_oldest_first() -> None:
    pods = [pod("c1", "canary", -9), pod("s2", "stable", -5), pod("s1", "stable", -7)]
    assert names(decide(pods)) == ["s1"]
    assert decide(pods).wait == RESTART_CHECK
    assert decide(pods).restarted_at is None


def test_no_eviction_while_a_pod_is_unavailable_or_going() -> None:
    going = [pod("s1", "stable", -7, deleting=True), pod("s2", "stable", -5), pod("n1", "stable", 1)]
    assert names(decide(going)) == []  # s1 is not replaced yet: two available of three
    starting = [pod("s2", "stable", -5), pod("n1", "stable", 1), pod("n2", "stable", 1, available=False)]
    assert names(decide(starting)) == []
    ready = [pod("s2", "stable", -5), pod("n1", "stable", 1), pod("n2", "stable", 1)]
    assert names(decide(ready)) == ["s2"]


def test_max_unavailable_pods_at_once_and_never_in_a_reconcile_that_scales() -> None:
    pods = [pod(f"s{index}", "stable", -index) for index in range(1, 5)]
    assert names(decide(pods, replicas=4, concurrent=2)) == ["s4", "s3"]
    assert decide(pods, replicas=4, concurrent=2, scaling=True) == Restart(wait=RESTART_CHECK)


def test_done_when_no_pod_is_older_than_restart_at() -> None:
    pods = [pod("n1", "stable", 0), pod("n2", "canary", 3)]  # made in restartAt's second: new, as in Argo
    assert decide(pods, replicas=2, restarted_at="2026-01-01T00:00:00Z") == Restart(restarted_at=AT)


def test_concurrency_is_the_rolling_updates_max_unavailable_else_one() -> None:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "a", "image": "a"}]}}
    base = {"replicas": 10, "selector": {"matchLabels": {"app": "a"}}, "template": template}
    assert concurrency(plan_of({**base, "strategy": {"rolling": {"maxUnavailable": 3}}})) == 3
    assert concurrency(plan_of({**base, "strategy": {"rolling": {"maxUnavailable": 0, "maxSurge": 1}}})) == 1
    assert concurrency(plan_of({**base, "strategy": {"canary": {"steps": [{"setWeight": 50}]}}})) == 1


@given(
    available=st.lists(st.booleans(), min_size=1, max_size=12),
    concurrent=st.integers(min_value=1, max_value=4),
)
def test_never_more_unavailable_than_allowed(available: list[bool], concurrent: int) -> None:
    """Whatever is observed, the pods evicted leave at least replicas - concurrent available."""
    pods = [pod(f"p{index}", "stable", -index - 1, available=ok) for index, ok in enumerate(available)]
    replicas = len(pods)
    evicted = set(names(decide(pods, replicas=replicas, concurrent=concurrent)))
    left = sum(1 for p in pods if p.available and p.name not in evicted)
    assert left >= min(replicas - concurrent, sum(p.available for p in pods))
    assert len(evicted) <= concurrent
