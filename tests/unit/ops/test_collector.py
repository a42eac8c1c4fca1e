"""The collector's tuning: young collections rarer, the start's heap frozen out of later ones."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from delivery.ops import collector


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


@pytest.mark.usefixtures("restored")
def test_young_collections_are_rarer_and_the_older_generations_keep_their_ratios() -> None:
    _, middle, old = gc.get_threshold()
    collector.tune()
    assert gc.get_threshold() == (collector.YOUNG, middle, old)


class Cached(dict[str, object]):
    """A cached object that a weak reference can follow (a plain dict cannot be)."""


@pytest.mark.usefixtures("restored")
def test_what_the_start_built_is_frozen_and_still_freed_when_replaced() -> None:
    cache = {f"ro-{n}": Cached(metadata={"name": f"ro-{n}"}) for n in range(1000)}
    first = weakref.ref(cache["ro-0"])
    before = gc.get_freeze_count()
    collector.settle()
    assert gc.get_freeze_count() >= before + len(cache)
    cache["ro-0"] = Cached(metadata={"name": "ro-0", "resourceVersion": "2"})  # the next watch event
    assert first() is None  # freed by reference counting, frozen or not
