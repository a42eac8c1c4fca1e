"""A timed step falls due when it is due, not up to a second after."""

from __future__ import annotations

import datetime

import pytest

from delivery.controllers.rollout import due_in


def test_a_wait_counts_from_the_decisions_second_not_from_the_end_of_the_reconcile() -> None:
    decided = datetime.datetime(2026, 12, 1, 10, 0, 5, tzinfo=datetime.UTC)
    later = decided + datetime.timedelta(seconds=0.75)
    assert due_in([2.0, 5.0], decided, later) == pytest.approx(1.25)
    assert due_in([0.5], decided, later) == 0.0  # already due
    assert due_in([], decided, later) is None
