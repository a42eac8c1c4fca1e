"""The tree the parser builds and the evaluator walks: one frozen class per kind of node.

Every node keeps the column it starts at, so an evaluation error points into the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from delivery.analysis.expr.values import Scalar


@dataclass(frozen=True)
class Constant:
    column: int
    value: Scalar


@dataclass(frozen=True)
class Result:
    column: int


@dataclass(frozen=True)
class Element:
    """`#`: the element a predicate of `all`/`any` is asked about."""

    column: int


@dataclass(frozen=True)
class ListDisplay:
    column: int
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Unary:
    column: int
    operator: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary:
    column: int
    operator: str  # "or", "and", a comparison, "in", "not in" or an arithmetic operator
    left: Node
    right: Node


@dataclass(frozen=True)
class Index:
    """`target[key]`, and `target.key` with the key as a string constant."""

    column: int
    target: Node
    key: Node


@dataclass(frozen=True)
class Call:
    column: int
    function: str
    arguments: tuple[Node, ...]


@dataclass(frozen=True)
class Quantifier:
    column: int
    kind: str  # "all" or "any"
    subject: Node
    predicate: Node


@dataclass(frozen=True)
class Default:
    column: int
    subject: Node
    fallback: Node


Node: TypeAlias = (
    Constant | Result | Element | ListDisplay | Unary | Binary | Index | Call | Quantifier | Default
)
