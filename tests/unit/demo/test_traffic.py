"""The demo's simulated traffic: who answers how much, and how well."""

from __future__ import annotations

import pytest

from demo.traffic import BAD, GOOD, behaviour, shares


def test_weights_split_traffic_between_stable_and_canary() -> None:
    status = {"stableRevision": "a", "canaryRevision": "b", "weights": {"canary": 20, "stable": 80}}
    assert shares(status, {"a": 4, "b": 1}) == pytest.approx({"a": 0.8, "b": 0.2})


def test_without_weights_ready_pods_share_the_traffic() -> None:
    assert shares({"stableRevision": "a"}, {"a": 3, "b": 1, "c": 0}) == pytest.approx({"a": 0.75, "b": 0.25})


def test_nothing_ready_answers_nothing() -> None:
    assert shares({}, {"a": 0}) == {}


def test_a_bad_tag_misbehaves_and_any_other_behaves() -> None:
    assert behaviour("demo:3-bad") is BAD
    assert behaviour("registry:5000/demo:2") is GOOD
    assert BAD.error_ratio > 10 * GOOD.error_ratio
