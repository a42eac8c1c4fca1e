"""A parsed condition: parsed once when a template is read, evaluated once per measurement."""

from __future__ import annotations

from dataclasses import dataclass

from delivery.analysis.expr.errors import ExprEvalError, ExprSyntaxError
from delivery.analysis.expr.evaluator import evaluate
from delivery.analysis.expr.parser import parse_tree
from delivery.analysis.expr.tree import Node
from delivery.analysis.expr.values import Value, describe


@dataclass(frozen=True)
class Expression:
    """A parsed condition: parse once when the template is read, evaluate per measurement."""

    source: str
    tree: Node

    def evaluate(self, result: Value) -> Value:
        """The expression's value with `result` bound to the measurement; raises ExprEvalError."""
        return evaluate(self.tree, result)

    def holds(self, result: Value) -> bool:
        """Whether the condition is true; a condition that gives no boolean is an ExprEvalError."""
        value = self.evaluate(result)
        if not isinstance(value, bool):
            raise ExprEvalError(f"a condition must give true or false, not {describe(value)}", 1)
        return value


def parse(source: str) -> Expression:
    """The expression in `source`; raises ExprSyntaxError with the column and what was expected."""
    return Expression(source, parse_tree(source))


def check(source: str) -> str | None:
    """The syntax error in `source` as one line for a status or an admission response, or None."""
    try:
        parse(source)
    except ExprSyntaxError as error:
        return str(error)
    return None
