"""The limits that keep hostile input cheap, and the errors that enforce them.

A condition is untrusted text evaluated on every measurement, so each stage has a ceiling: the
source is at most `MAX_SOURCE` characters; the parser opens at most `MAX_DEPTH` levels of nesting
(each parenthesis, operator, lookup and argument list is a level), so neither the parser nor the
evaluator, which recurse once per level, can exhaust the stack; and one evaluation visits at most
`MAX_STEPS` nodes, so a predicate nested in a predicate over a large vector ends with an error
instead of hanging.
"""

from __future__ import annotations

from delivery.analysis.expr.errors import ExprEvalError, ExprSyntaxError

MAX_SOURCE = 1000
MAX_DEPTH = 50
MAX_STEPS = 100_000


def limit_source(source: str) -> None:
    """Refuse a source longer than `MAX_SOURCE`, before a single token is read."""
    if len(source) > MAX_SOURCE:
        raise ExprSyntaxError(f"expression is longer than {MAX_SOURCE} characters", MAX_SOURCE + 1)


def limit_depth(depth: int, column: int) -> None:
    """Refuse the level of nesting opened at `column` when it is one more than `MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise ExprSyntaxError(f"expression nests deeper than {MAX_DEPTH} levels", column)


def limit_steps(steps: int, column: int) -> None:
    """Refuse the node visit at `column` when it is one more than `MAX_STEPS` in this evaluation."""
    if steps > MAX_STEPS:
        raise ExprEvalError(f"evaluation takes more than {MAX_STEPS} steps", column)
