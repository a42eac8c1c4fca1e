"""The two ways a condition goes wrong, each pointing at a column of its source."""

from __future__ import annotations


class ExprError(Exception):
    """A message about the source, and the column (1-based) it points at."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


class ExprSyntaxError(ExprError):
    """The source is not a well-formed expression; reported when a template is applied."""


class ExprEvalError(ExprError):
    """The expression does not apply to this measurement (a type error, a missing key, ...)."""
