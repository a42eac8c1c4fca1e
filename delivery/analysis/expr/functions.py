"""The fixed table of functions a condition may call: the only callables an expression reaches.

The parser reads a function's arity from this table to refuse a wrong call when a template is
applied; the evaluator applies it. `all`, `any` and `default` are not here: they decide which of
their arguments to evaluate, so the evaluator handles them as nodes of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from delivery.analysis.expr.values import Number, Value, describe, is_nan, is_number


class Refusal(Exception):
    """A function refuses its arguments; the caller adds the function's name and column."""


@dataclass(frozen=True)
class Function:
    minimum: int
    maximum: int | None  # None: any number of arguments from the minimum on
    apply: Callable[[list[Value]], Value]


def _one(function: Callable[[Value], Value]) -> Function:
    return Function(1, 1, lambda arguments: function(arguments[0]))


def _aggregate(function: Callable[[list[Number]], Value]) -> Function:
    """A function of one list, or of numbers given as separate arguments: `max(result)`, `max(a, b)`."""

    def apply(arguments: list[Value]) -> Value:
        values = arguments[0] if len(arguments) == 1 and isinstance(arguments[0], list) else arguments
        numbers = [value for value in values if is_number(value)]
        if len(numbers) < len(values):
            strays = (value for value in values if not is_number(value))
            raise Refusal(f"needs numbers, found {describe(next(strays))}")
        return function(numbers)

    return Function(1, None, apply)


def _length(value: Value) -> Value:
    if isinstance(value, list | dict | str):
        return len(value)
    raise Refusal(f"needs a list, map or string, found {describe(value)}")


def _absolute(value: Value) -> Value:
    if is_number(value):
        return abs(value)
    raise Refusal(f"needs a number, found {describe(value)}")


def _extreme(pick: Callable[[list[Number]], Number]) -> Callable[[list[Number]], Value]:
    def extreme(numbers: list[Number]) -> Value:
        if not numbers:
            raise Refusal("of an empty list")
        return math.nan if any(map(is_nan, numbers)) else pick(numbers)

    return extreme


def _average(numbers: list[Number]) -> Value:
    if not numbers:
        raise Refusal("of an empty list")
    return sum(numbers) / len(numbers)


def _is_infinite(value: Value) -> bool:
    return isinstance(value, float) and math.isinf(value)


def _as_int(value: Value) -> Value:
    if is_number(value) or isinstance(value, str):
        with suppress(ValueError):  # NaN, or a string that is no integer
            return int(value)
    raise Refusal(f"cannot read {describe(value)} as an integer")


def _as_float(value: Value) -> Value:
    if is_number(value) or isinstance(value, str):
        with suppress(ValueError):  # a string that is no number
            return float(value)
    raise Refusal(f"cannot read {describe(value)} as a number")


FUNCTIONS: dict[str, Function] = {
    "len": _one(_length),
    "abs": _one(_absolute),
    "isNaN": _one(is_nan),
    "isInf": _one(_is_infinite),
    "isNil": _one(lambda value: value is None),
    "asInt": _one(_as_int),
    "asFloat": _one(_as_float),
    "min": _aggregate(_extreme(min)),
    "max": _aggregate(_extreme(max)),
    "sum": _aggregate(sum),
    "avg": _aggregate(_average),
    "mean": _aggregate(_average),
}
