"""What the providers make of an answer: Prometheus' result shapes, and JSON paths into web answers."""

from __future__ import annotations

import math
from typing import Any

import pytest

from delivery.analysis.expr import Value
from delivery.analysis.prometheus import value_of
from delivery.analysis.provider import Unmeasurable
from delivery.analysis.web import pick


def test_a_scalar_is_a_number_and_a_vector_a_list() -> None:
    assert value_of([1700000000.5, "0.25"]) == 0.25
    assert value_of([{"metric": {"a": "1"}, "value": [1.0, "3"]}, {"metric": {}, "value": [1.0, "4"]}]) == [
        3,
        4,
    ]
    assert value_of([]) == []  # no series matched: the conditions decide (default(), len())


def test_special_sample_values_become_floats() -> None:
    value = value_of([{"metric": {}, "value": [1.0, "NaN"]}, {"metric": {}, "value": [1.0, "+Inf"]}])
    assert isinstance(value, list)
    assert math.isnan(value[0])  # type: ignore[arg-type]
    assert value[1] == math.inf


def test_a_string_result_is_a_string() -> None:
    assert value_of([1.0, "canary"]) == "canary"


@pytest.mark.parametrize(
    ("result", "says"),
    [
        ([{"metric": {}, "values": [[1.0, "1"]]}], "range vector"),
        ({"resultType": "vector"}, "not a Prometheus query result"),
        ([{"metric": {}, "value": [1.0, "many"]}], "not a sample value"),
        ("<html>", "not a Prometheus query result"),
    ],
)
def test_other_shapes_are_errors_that_say_so(result: Any, says: str) -> None:
    with pytest.raises(Unmeasurable, match=says):
        value_of(result)


DOCUMENT: Value = {"data": {"ok": True, "rates": [0.1, 0.2], "by-zone": {"eu": 3}}}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOCUMENT),
        ("{$.data.ok}", True),
        ("$.data.rates[1]", 0.2),
        ("$.data.rates[-1]", 0.2),
        ("$.data['by-zone'].eu", 3),
        ("{ $.data.by-zone.eu }", 3),
    ],
)
def test_json_paths_pick_one_value(path: str, value: Any) -> None:
    assert pick(DOCUMENT, path) == value


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("data.ok", "must start with \\$"),
        ("$.data.missing", "nothing at '\\$.data.missing'"),
        ("$.data.rates[5]", "nothing at"),
        ("$.data.ok.deeper", "nothing at"),
        ("$.data..ok", "cannot be read at character 7"),
        ("$[0]", "nothing at"),
    ],
)
def test_json_paths_that_find_nothing_are_errors(path: str, says: str) -> None:
    with pytest.raises(Unmeasurable, match=says):
        pick(DOCUMENT, path)
