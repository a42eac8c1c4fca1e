"""Evaluation: one walk of a tree over one measurement, with the operators' meaning on values.

The walk counts every node it visits against the step budget. `and`, `or`, `all`, `any` and
`default` evaluate only what decides them, so `false and 1 / 0 > 0` is false, and a lookup that
finds nothing is an error except inside `default`, which catches exactly that.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, assert_never

from delivery.analysis.expr.budget import limit_steps
from delivery.analysis.expr.errors import ExprEvalError
from delivery.analysis.expr.functions import FUNCTIONS, Refusal
from delivery.analysis.expr.tree import (
    Binary,
    Call,
    Constant,
    Default,
    Element,
    Index,
    ListDisplay,
    Node,
    Quantifier,
    Result,
    Unary,
)
from delivery.analysis.expr.values import Number, Value, describe, equal, is_nan, is_number, kind


class _Missing(ExprEvalError):
    """A lookup found nothing: an error, except inside `default`, which catches exactly this."""


def evaluate(tree: Node, result: Value) -> Value:
    """The value of `tree` with `result` bound to the measurement; raises ExprEvalError."""
    return _Evaluation(result).value(tree)


class _Evaluation:
    """One walk of a tree over one measurement: the elements of open predicates and a step budget."""

    def __init__(self, result: Value) -> None:
        self._result = result
        self._elements: list[Value] = []
        self._steps = 0

    def value(self, node: Node) -> Value:  # noqa: PLR0911 - one case per node type
        self._steps += 1
        limit_steps(self._steps, node.column)
        match node:
            case Constant(value=value):
                return value
            case Result():
                return self._result
            case Element():
                return self._elements[-1]
            case ListDisplay(items=items):
                return [self.value(item) for item in items]
            case Unary():
                return self._unary(node)
            case Binary(operator="and" | "or"):
                return self._logical(node)
            case Binary():
                return _binary(node.column, node.operator, self.value(node.left), self.value(node.right))
            case Index():
                return _lookup(node.column, self.value(node.target), self.value(node.key))
            case Call():
                return self._call(node)
            case Quantifier():
                return self._quantify(node)
            case Default():
                return self._default(node)
            case _:
                assert_never(node)

    def _unary(self, node: Unary) -> Value:
        operand = self.value(node.operand)
        if node.operator == "not":
            return not _truth(operand, node.column, "'not'")
        if is_number(operand):
            return -operand
        raise ExprEvalError(f"cannot negate {describe(operand)}", node.column)

    def _logical(self, node: Binary) -> bool:
        """`and`/`or`, evaluating the right side only when the left does not decide."""
        context = f"'{node.operator}'"
        left = _truth(self.value(node.left), node.left.column, context)
        if left == (node.operator == "or"):
            return left
        return _truth(self.value(node.right), node.right.column, context)

    def _call(self, node: Call) -> Value:
        arguments = [self.value(argument) for argument in node.arguments]
        try:
            return FUNCTIONS[node.function].apply(arguments)
        except Refusal as refusal:
            raise ExprEvalError(f"{node.function}() {refusal}", node.column) from None
        except OverflowError:
            raise ExprEvalError(f"{node.function}() gives a number too large", node.column) from None

    def _quantify(self, node: Quantifier) -> bool:
        subject = self.value(node.subject)
        if not isinstance(subject, list):
            raise ExprEvalError(f"{node.kind}() needs a list, found {describe(subject)}", node.subject.column)
        verdicts = (self._holds_for(node.predicate, element) for element in subject)
        return all(verdicts) if node.kind == "all" else any(verdicts)

    def _holds_for(self, predicate: Node, element: Value) -> bool:
        self._elements.append(element)
        try:
            return _truth(self.value(predicate), predicate.column, "the predicate")
        finally:
            self._elements.pop()

    def _default(self, node: Default) -> Value:
        try:
            value = self.value(node.subject)
        except _Missing:
            value = None
        if value is None or is_nan(value):
            return self.value(node.fallback)
        return value


def _truth(value: Value, column: int, context: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ExprEvalError(f"{context} needs true or false, found {describe(value)}", column)


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: dict[str, Callable[[Number, Number], Number]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}


def _binary(column: int, operator_: str, left: Value, right: Value) -> Value:
    if operator_ in ("==", "!="):
        return equal(left, right) == (operator_ == "==")
    if operator_ in ("in", "not in"):
        return _contains(column, right, left) == (operator_ == "in")
    if operator_ in _ORDERINGS:
        return _order(column, operator_, left, right)
    return _arithmetic(column, operator_, left, right)


def _order(column: int, operator_: str, left: Value, right: Value) -> bool:
    comparable = (is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str))
    if not comparable:
        raise ExprEvalError(f"cannot compare {kind(left)} with {kind(right)} using '{operator_}'", column)
    return _ORDERINGS[operator_](left, right)


def _arithmetic(column: int, operator_: str, left: Value, right: Value) -> Value:
    if is_number(left) and is_number(right):
        if operator_ in ("/", "%") and right == 0:
            raise ExprEvalError("division by zero", column)
        try:
            return _ARITHMETIC[operator_](left, right)
        except OverflowError:
            raise ExprEvalError("number too large", column) from None
    if operator_ == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    raise ExprEvalError(f"cannot apply '{operator_}' to {kind(left)} and {kind(right)}", column)


def _contains(column: int, container: Value, item: Value) -> bool:
    if isinstance(container, list):
        return any(equal(item, element) for element in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    raise ExprEvalError(f"'in' needs a list or map on its right, found {describe(container)}", column)


def _lookup(column: int, target: Value, key: Value) -> Value:
    if isinstance(target, dict):
        if not isinstance(key, str):
            raise ExprEvalError(f"a map key must be a string, found {describe(key)}", column)
        if key not in target:
            raise _Missing(f"no key {key!r} in the map", column)
        return target[key]
    if isinstance(target, list):
        if not (is_number(key) and (isinstance(key, int) or key.is_integer())):
            raise ExprEvalError(f"a list index must be a whole number, found {describe(key)}", column)
        if not -len(target) <= key < len(target):
            raise _Missing(f"index {int(key)} is out of range for a list of {len(target)}", column)
        return target[int(key)]
    if target is None:
        raise _Missing(f"cannot look up {describe(key)} in nil", column)
    raise ExprEvalError(f"cannot look up {describe(key)} in a {kind(target)}", column)
