"""The grammar: tokens to a tree, by Pratt parsing with binding powers from loose to tight.

Every level of nesting the parser opens (a parenthesis, an operator, a lookup, an argument list)
is counted against the depth budget, so a deep source is refused here, as a syntax error, before
either this recursive parser or the recursive evaluator can exhaust the stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from delivery.analysis.expr.budget import limit_depth, limit_source
from delivery.analysis.expr.errors import ExprSyntaxError
from delivery.analysis.expr.functions import FUNCTIONS
from delivery.analysis.expr.tokens import Token, tokenize
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
from delivery.analysis.expr.values import Scalar

_OR, _AND, _NOT, _COMPARE, _ADD, _MULTIPLY, _NEGATE = range(1, 8)
_INFIX: dict[str, tuple[str, int]] = {
    "or": ("or", _OR),
    "||": ("or", _OR),
    "and": ("and", _AND),
    "&&": ("and", _AND),
    **{symbol: (symbol, _COMPARE) for symbol in ("==", "!=", "<", "<=", ">", ">=", "in")},
    "not": ("not in", _COMPARE),
    **{symbol: (symbol, _ADD) for symbol in ("+", "-")},
    **{symbol: (symbol, _MULTIPLY) for symbol in ("*", "/", "%")},
}
_PREFIX: dict[str, tuple[str, int]] = {"-": ("-", _NEGATE), "not": ("not", _NOT), "!": ("not", _NOT)}
_CONSTANTS: dict[str, Scalar] = {"true": True, "false": False, "nil": None}
_RESERVED = frozenset({"and", "or", "in"})


def parse_tree(source: str) -> Node:
    """The tree of `source`; raises ExprSyntaxError with the column and what was expected."""
    limit_source(source)
    return _Parser(tokenize(source)).parse()


class _Parser:
    def __init__(self, tokens: Iterator[Token]) -> None:
        self._tokens = tokens
        self._current: Token | None = None  # the token peeked at and not yet consumed
        self._depth = 0  # nesting levels open on the current path, restored by `_expression`
        self._predicates = 0  # predicates of all/any open around the current token: where `#` is allowed

    def parse(self) -> Node:
        tree = self._expression()
        if self._peek().kind != "end":
            self._fail("an operator or end of input")
        return tree

    def _peek(self) -> Token:
        if self._current is None:
            self._current = next(self._tokens)
        return self._current

    def _advance(self) -> Token:
        token = self._peek()
        self._current = None
        return token

    def _accept(self, text: str) -> bool:
        if self._peek().is_(text):
            self._advance()
            return True
        return False

    def _expect(self, text: str, expected: str = "") -> None:
        if not self._accept(text):
            self._fail(expected or f"'{text}'")

    def _fail(self, expected: str) -> NoReturn:
        token = self._peek()
        raise ExprSyntaxError(f"expected {expected}, found {token.describe()}", token.column)

    def _deepen(self, token: Token) -> None:
        self._depth += 1
        limit_depth(self._depth, token.column)

    def _expression(self, power: int = 0) -> Node:
        """The longest expression whose operators all bind tighter than `power`."""
        depth = self._depth
        left = self._prefix()
        chained = False
        while infix := self._infix(power):
            token, operator, binding = infix
            if chained and binding == _COMPARE:
                raise ExprSyntaxError("comparisons do not chain; join them with 'and'", token.column)
            self._deepen(token)
            left = Binary(token.column, operator, left, self._expression(binding))
            chained = binding == _COMPARE
        self._depth = depth
        return left

    def _infix(self, power: int) -> tuple[Token, str, int] | None:
        token = self._peek()
        infix = _INFIX.get(token.text) if token.kind in ("word", "symbol") else None
        if infix is None or infix[1] <= power:
            return None
        self._advance()
        if token.is_("not"):
            self._expect("in", "'in' after 'not'")
        return token, *infix

    def _prefix(self) -> Node:
        token = self._advance()
        prefix = _PREFIX.get(token.text) if token.kind in ("word", "symbol") else None
        if prefix is None:
            return self._postfix(self._primary(token))
        self._deepen(token)
        return Unary(token.column, prefix[0], self._expression(prefix[1]))

    def _postfix(self, node: Node) -> Node:
        while (token := self._peek()).is_("[") or token.is_("."):
            self._advance()
            self._deepen(token)
            if token.is_("["):
                key = self._expression()
                self._expect("]")
            else:
                key = self._field()
            node = Index(token.column, node, key)
        return node

    def _field(self) -> Constant:
        token = self._peek()
        if token.kind != "word":
            self._fail("a field name after '.'")
        self._advance()
        return Constant(token.column, token.text)

    def _primary(self, token: Token) -> Node:
        if token.kind in ("number", "string"):
            return Constant(token.column, token.value)
        if token.kind == "word":
            return self._word(token)
        if token.is_("("):
            self._deepen(token)
            inner = self._expression()
            self._expect(")")
            return inner
        if token.is_("["):
            self._deepen(token)
            return ListDisplay(token.column, tuple(self._items("]")))
        if token.is_("#") and self._predicates:
            return Element(token.column)
        if token.is_("#"):
            raise ExprSyntaxError("'#' is only allowed inside the predicate of all() or any()", token.column)
        raise ExprSyntaxError(f"expected an expression, found {token.describe()}", token.column)

    def _word(self, token: Token) -> Node:
        name = token.text
        if name in _CONSTANTS:
            return Constant(token.column, _CONSTANTS[name])
        if name == "result":
            return Result(token.column)
        if name in ("all", "any"):
            return self._quantifier(token)
        if name == "default":
            return self._default(token)
        if function := FUNCTIONS.get(name):
            arguments = self._arguments(token)
            _check_arity(token, len(arguments), function.minimum, function.maximum)
            return Call(token.column, name, tuple(arguments))
        if name in _RESERVED:
            raise ExprSyntaxError(f"expected an expression, found '{name}'", token.column)
        raise ExprSyntaxError(f"unknown name '{name}' (the only variable is result)", token.column)

    def _open(self, function: Token) -> None:
        """The parenthesis after a function's name, which opens a level of nesting."""
        self._expect("(", f"'(' after {function.text}")
        self._deepen(function)

    def _arguments(self, function: Token) -> list[Node]:
        self._open(function)
        return self._items(")")

    def _items(self, closing: str) -> list[Node]:
        """Comma-separated expressions up to `closing`."""
        items: list[Node] = []
        if self._accept(closing):
            return items
        items.append(self._expression())
        while self._accept(","):
            items.append(self._expression())
        self._expect(closing, f"',' or '{closing}'")
        return items

    def _quantifier(self, token: Token) -> Quantifier:
        self._open(token)
        subject = self._expression()
        self._expect(",", "',' and a predicate after the list")
        with self._predicate():
            braced = self._accept("{")
            predicate = self._expression()
            if braced:
                self._expect("}")
        self._expect(")")
        return Quantifier(token.column, token.text, subject, predicate)

    @contextmanager
    def _predicate(self) -> Iterator[None]:
        self._predicates += 1
        try:
            yield
        finally:
            self._predicates -= 1

    def _default(self, token: Token) -> Default:
        arguments = self._arguments(token)
        _check_arity(token, len(arguments), 1, 2)
        if len(arguments) == 1:
            return Default(token.column, Result(token.column), arguments[0])
        return Default(token.column, arguments[0], arguments[1])


def _check_arity(function: Token, count: int, minimum: int, maximum: int | None) -> None:
    if minimum <= count and (maximum is None or count <= maximum):
        return
    if maximum is None:
        wanted = f"at least {minimum}"
    elif maximum == minimum:
        wanted = f"{minimum}"
    else:  # only default() takes a range of arguments: 1 or 2
        wanted = f"{minimum} or {maximum}"
    plural = "" if (maximum or minimum) == 1 else "s"
    raise ExprSyntaxError(f"{function.text}() takes {wanted} argument{plural}, got {count}", function.column)
