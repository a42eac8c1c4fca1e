"""The cache is synced once the watches delivered everything a listing showed, deletions included."""

from __future__ import annotations

from typing import Any

from delivery.controllers.cache import Cache


def body(name: str, version: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": name, "resourceVersion": str(version)}}


def test_synced_when_each_listed_object_was_seen_at_least_as_new() -> None:
    cache = Cache()
    listed = {(("shop", "web"), ""): 10, (("shop", "web"), "web-5d8f"): 12}
    cache.observe(None, body("web", 9))
    assert not cache.sync_with(listed)  # an older version than the listing's
    cache.observe("MODIFIED", body("web", 11))
    cache.observe_child(None, ("shop", "web"), body("web-5d8f", 12))
    assert cache.sync_with(listed)
    assert cache.synced


def test_an_object_deleted_after_the_listing_counts_as_seen() -> None:
    cache = Cache()
    cache.observe("DELETED", body("gone", 7))
    assert cache.sync_with({(("shop", "gone"), ""): 6})
    assert cache.get(("shop", "gone")) is None


def test_once_synced_it_stays_synced_and_stops_taking_notes() -> None:
    cache = Cache()
    assert cache.sync_with({})
    cache.observe(None, body("web", 3))
    assert cache.sync_with({(("shop", "other"), ""): 99})
