"""Cross-field rules, each said once and checked twice: by the apiserver and by the models.

A JSON schema cannot say "exactly one of these fields", so such rules live in the CRD as CEL
(`x-kubernetes-validations`). The same rule must hold for the pydantic models, or the models and
the CRDs would disagree about what a valid object is. A `Rule` therefore carries the CEL text and
a Python predicate over the object as the apiserver sees it: a dict with camelCase keys where an
absent field is absent, so `has(self.x)` and `"x" in wire` mean the same thing.

The rules that only say "which fields are present" are built by the factories below from field
names, so their CEL and Python cannot drift apart; the few that compare values spell out both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Wire = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    cel: str
    message: str  # names the fields involved, since the apiserver prints it after the object's path
    holds: Callable[[Wire], bool]
    field_path: str = ""  # the field to blame, relative to the object (".selector"); empty: the object

    def as_crd(self) -> dict[str, str]:
        """This rule as one entry of `x-kubernetes-validations`."""
        rule = {"rule": self.cel, "message": self.message}
        if self.field_path:
            rule["fieldPath"] = self.field_path
        return rule


def _count_cel(fields: tuple[str, ...]) -> str:
    return " + ".join(f"(has(self.{field}) ? 1 : 0)" for field in fields)


def _names(fields: tuple[str, ...]) -> str:
    return ", ".join(fields[:-1]) + " or " + fields[-1]


def exactly_one(*fields: str) -> Rule:
    return Rule(
        cel=f"{_count_cel(fields)} == 1",
        message=f"exactly one of {_names(fields)} must be set",
        holds=lambda wire: sum(field in wire for field in fields) == 1,
    )


def at_most_one(*fields: str) -> Rule:
    return Rule(
        cel=f"{_count_cel(fields)} <= 1",
        message=f"at most one of {_names(fields)} may be set",
        holds=lambda wire: sum(field in wire for field in fields) <= 1,
    )


def at_least_one(*fields: str) -> Rule:
    return Rule(
        cel=" || ".join(f"has(self.{field})" for field in fields),
        message=f"at least one of {_names(fields)} must be set",
        holds=lambda wire: any(field in wire for field in fields),
    )


def requires(field: str, *needed: str) -> Rule:
    """`field` is meaningless without every one of `needed`; the missing one is blamed."""
    present = " && ".join(f"has(self.{other})" for other in needed)
    return Rule(
        cel=f"!has(self.{field}) || ({present})",
        message=f"{field} requires {' and '.join(needed)}",
        holds=lambda wire: field not in wire or all(other in wire for other in needed),
        field_path=f".{needed[0]}" if len(needed) == 1 else f".{field}",
    )


def differ(field: str, other: str) -> Rule:
    """Two names that must not point at the same object (a Service cannot be both stable and canary)."""
    return Rule(
        cel=f"!has(self.{field}) || !has(self.{other}) || self.{field} != self.{other}",
        message=f"{field} and {other} must name different objects",
        holds=lambda wire: wire.get(field) is None or wire.get(field) != wire.get(other),
        field_path=f".{field}",
    )


PERCENT_PATTERN = r"^[0-9]{1,3}%$"
SECONDS_OR_DURATION_PATTERN = r"^([0-9]+|([0-9]+([.][0-9]+)?(ms|s|m|h))+)$"
"""Argo's pause duration as a string: a duration (`30s`, `1h`) or whole seconds without a unit (`30`)."""


def int_or_string(field: str, pattern: str, message: str) -> Rule:
    """`field` is a non-negative integer or a string of `pattern`. In the CRD the string's format is
    the field's OpenAPI `pattern` (which applies to strings only) and the rule checks the integer:
    a CEL regex on an int-or-string (`dyn`) is costed at the largest request's length, too dear for
    the apiserver's budget once such a field sits in a list (a pause in a canary's steps)."""

    def holds(wire: Wire) -> bool:
        value = wire.get(field)
        if isinstance(value, int):
            return value >= 0
        return value is None or re.fullmatch(pattern, value) is not None

    return Rule(
        cel=f"!has(self.{field}) || type(self.{field}) != int || self.{field} >= 0",
        message=message,
        holds=holds,
        field_path=f".{field}",
    )


def int_or_percent(field: str) -> Rule:
    """`field` is a non-negative count or a percentage."""
    return int_or_string(
        field, PERCENT_PATTERN, f"{field} must be a non-negative number of pods or a percentage such as '25%'"
    )


def seconds_or_duration(field: str) -> Rule:
    """`field` is whole seconds (`30`, `"30"`) or a duration (`30s`), as Argo's IntOrString durations."""
    return int_or_string(
        field,
        SECONDS_OR_DURATION_PATTERN,
        f"{field} must be a number of seconds or a duration such as '30s', '5m' or '1h30m'",
    )
