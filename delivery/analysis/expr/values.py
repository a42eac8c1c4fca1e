"""What an expression computes with: JSON values, and how they compare and read in a message.

A measurement is a number, a list of numbers for a vector, or any JSON value for a web metric, so
the language's values are exactly JSON's. A boolean is never a number here, though Python says so.
"""

from __future__ import annotations

import math
from typing import TypeAlias, TypeGuard

Value: TypeAlias = int | float | str | bool | list["Value"] | dict[str, "Value"] | None
Scalar: TypeAlias = int | float | str | bool | None
Number: TypeAlias = int | float


def is_number(value: Value) -> TypeGuard[Number]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_nan(value: Value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def kind(value: Value) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "map"


def describe(value: Value) -> str:
    """A value in a message: short, and saying its type."""
    if value is None or isinstance(value, bool):
        return "nil" if value is None else str(value).lower()
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a map"
    text = repr(value)
    return f"{kind(value)} {text if len(text) <= 40 else text[:37] + '...'}"


def equal(left: Value, right: Value) -> bool:
    """`==`: values of different kinds are unequal, numbers compare by value, containers deeply."""
    if is_number(left) and is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(equal(left[key], right[key]) for key in left)
    return kind(left) == kind(right) and left == right
