"""The store's bookkeeping, fed the events its informers deliver (no informer started): one view per
object, the weight series, what each open page is told, and the bounds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes.aio.client import ApiClient

from delivery.dashboard import views
from delivery.dashboard.store import COMPONENTS, ROLLOUTS, Store
from delivery.kube.api import Kube
from delivery.rollout.revision import ROLLOUT_LABEL


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    client = ApiClient()  # never connects: no informer is started here
    ticks = iter(f"2026-12-01T10:00:{second:02d}Z" for second in range(60))
    yield Store(Kube(client), ("shop",), clock=lambda: next(ticks))
    await client.close()


def rollout(weight: int, name: str = "web", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shop", "managedFields": [{"big": "x" * 1000}]},
        "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}]}}, "template": {"spec": {"x": 1}}},
        "status": {"weights": {"canary": weight}, **status},
    }


async def test_one_view_per_rollout_and_a_weight_series_of_its_changes(store: Store) -> None:
    for weight in (0, 20, 20, 50):
        store._rollout("MODIFIED", rollout(weight))
    assert list(store.rollouts) == [("shop", "web")]
    assert "template" not in str(store.rollouts["shop", "web"])  # the view, not the object
    assert [w for _, w in store.weights["shop", "web"]] == [0, 20, 50]
    store._rollout("DELETED", rollout(50))
    assert store.rollouts == {}
    assert store.weights == {}


async def test_the_list_is_told_of_rows_and_a_page_of_its_rollout_only(store: Store) -> None:
    listing = store.subscribe(None)
    web, other = store.subscribe(("shop", "web")), store.subscribe(("shop", "x"))
    store._rollout("ADDED", rollout(0))
    replicaset = {"metadata": {"name": "web-1", "namespace": "shop", "labels": {ROLLOUT_LABEL: "web"}}}
    store._replicaset("ADDED", replicaset)
    assert listing.take() == {(ROLLOUTS, ("shop", "web"))}  # a ReplicaSet is not in the list
    assert web.wake.is_set()
    assert web.take() == {(ROLLOUTS, ("shop", "web"))}  # coalesced: the page is sent once
    assert not other.wake.is_set()
    page = store.page(("shop", "web"))
    assert page is not None
    assert [rs["name"] for rs in page["replicasets"]] == ["web-1"]
    store._rollout("DELETED", rollout(0))
    changed = listing.take()
    assert store.listing(changed) == {"rollouts": [], "components": [], "gone": [[ROLLOUTS, "shop", "web"]]}
    assert store.page(("shop", "web")) is None
    store.unsubscribe(listing)
    store._rollout("ADDED", rollout(0))
    assert not listing.wake.is_set()


async def test_a_component_row_moves_with_its_rollout(store: Store) -> None:
    listing = store.subscribe(None)
    component = {
        "metadata": {"name": "shop-web", "namespace": "shop"},
        "status": {"objects": [{"kind": "Rollout", "name": "web", "apiVersion": "x"}]},
    }
    store._component("ADDED", component)
    listing.take()
    store._rollout("MODIFIED", rollout(20))
    assert listing.take() == {(ROLLOUTS, ("shop", "web")), (COMPONENTS, ("shop", "shop-web"))}
    (row,) = store.listing()["components"]
    assert row["weight"] == 20


async def test_events_kept_are_the_newest_few(store: Store) -> None:
    for number in range(views.EVENTS_KEPT + 5):
        store._event(
            "ADDED",
            {
                "metadata": {"name": f"e{number:03d}", "namespace": "shop"},
                "involvedObject": {"kind": "Rollout", "name": "web"},
                "lastTimestamp": f"2026-12-01T10:{number:02d}:00Z",
            },
        )
    kept = store.events["shop", "web"]
    assert len(kept) == views.EVENTS_KEPT
    assert min(kept) == "e005"
