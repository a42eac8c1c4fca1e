"""The condition language of `successCondition` and `failureCondition`: parsed, never `eval`-ed.

A measurement's conditions are written by whoever writes an AnalysisTemplate, so they are untrusted
text that decides whether a canary is promoted. They are tokenized, parsed into a tree of the node
classes below and evaluated by walking that tree: no Python `eval`, `exec`, `compile` or attribute
access is ever reached, and the only callables are the fixed table of functions below. The syntax
follows the `expr` language Argo Rollouts users know; where it departs, the notes below say so.

Values: numbers (`3`, `0.5`, `1.5e-3`; integers and floats compare and compute together), strings
(`'…'` or `"…"`, escapes `\\\\ \\' \\" \\n \\t \\r \\uXXXX`), `true`, `false`, `nil`, lists
(`[1, 2]`), and the one variable `result`: the measurement, a number, a list of numbers for a vector,
or any JSON value for a web metric.

Operators, from the loosest to the tightest binding:
    `or` `||`    `and` `&&`    `not` `!`    `== != < <= > >= in` `not in`    `+ -`    `* / %`
    unary `-`    `x[i]` `x["key"]` `x.key`
- `not` binds looser than comparisons, as in Python: `not result > 1` is `not (result > 1)`
  (expr binds it tighter, which makes that same text compare a boolean with a number).
- Comparisons do not chain: `1 < x < 2` is a syntax error; write `1 < x and x < 2`.
- `and`, `or`, `not` need booleans (no truthiness) and short-circuit: `false and 1/0 > 0` is false.
- `==` and `!=` compare any two values: different types are unequal (`1 == true` is false), numbers
  compare by value (`1 == 1.0`), lists and maps element by element, NaN equals nothing.
- `< <= > >=` order two numbers or two strings (by code point); anything else is an error.
- `+` adds numbers or joins strings; `/` always divides exactly (`7 / 2` is 3.5); `%` takes the
  sign of the divisor (as in Python, unlike expr); dividing by zero is an error, not inf or NaN as
  in expr, so a rate over zero requests says so instead of quietly failing a comparison.
- `x in list` is membership by `==`; `key in map` asks whether a map has a key.
- `list[i]` takes a whole-number index, negative from the end; `map["key"]` and `map.key` read a
  key. A missing key, an index out of range or a lookup in `nil` is an error, except inside
  `default`.

Functions (their arity is checked when parsing):
- `len(x)`: the length of a list, map or string.
- `all(list, predicate)`, `any(list, predicate)`: whether the predicate holds for every element, or
  for at least one; in the predicate `#` is the element, e.g. `all(result, # < 0.05)`. The predicate
  may be wrapped in braces as in expr (`all(result, {# < 0.05})`); in nested predicates `#` is the
  innermost element. They stop at the first element that decides, and an empty list gives `true`
  for `all` and `false` for `any`.
- `isNaN(x)`, `isInf(x)`, `isNil(x)`: whether x is NaN, ±infinity, nil; any value may be asked.
- `default(x, fallback)`: x, or the fallback when x is nil, NaN, or looks up something missing;
  `default(fallback)` is `default(result, fallback)`, Argo Rollouts' one-argument form.
- `abs(x)`; `min`, `max`, `sum`, `avg` (alias `mean`) of one list or of several numbers; NaN in
  `min`/`max` gives NaN; `min`, `max` and `avg` of nothing are errors, `sum` of nothing is 0.
- `asInt(x)`, `asFloat(x)`: a number from a string (a JSON body that quotes its numbers) or another
  number; `asInt` truncates toward zero.

Errors: `parse` raises `ExprSyntaxError`, `Expression.evaluate` raises `ExprEvalError`; both carry the
column (1-based, counted over the whole source, newlines included) and a message. Limits keep
hostile input cheap: at most `MAX_SOURCE` characters, `MAX_DEPTH` levels of nesting (each
parenthesis, operator, lookup and argument list is a level, so neither the parser nor the evaluator
can exhaust the stack), and `MAX_STEPS` node visits per evaluation (a predicate nested in a
predicate over a large vector ends with an error instead of hanging).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NoReturn, TypeAlias, TypeGuard, assert_never

Value: TypeAlias = int | float | str | bool | list["Value"] | dict[str, "Value"] | None
Scalar: TypeAlias = int | float | str | bool | None
Number: TypeAlias = int | float

MAX_SOURCE = 1000
MAX_DEPTH = 50
MAX_STEPS = 100_000


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


class _Missing(ExprEvalError):
    """A lookup found nothing: an error, except inside `default`, which catches exactly this."""


# ---------------------------------------------------------------------------------------------
# Tree


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


# ---------------------------------------------------------------------------------------------
# Tokens

_SPACE = re.compile(r"[ \t\r\n]+")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYMBOL = re.compile(r"==|!=|<=|>=|&&|\|\||[-+*/%<>!()\[\]{},.#]")
# A number glued to one of these was mistyped (`1e`, `1.e5`, `2x`): numbers have no fields.
_GLUED = re.compile(r"[A-Za-z0-9_.]+")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_HINTS = {"=": " (did you mean '=='?)", "&": " (did you mean '&&'?)", "|": " (did you mean '||'?)"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "string", "word", "symbol" or "end"
    text: str  # as written in the source
    column: int
    value: Scalar = None  # the number or the decoded string

    def describe(self) -> str:
        if self.kind == "end":
            return "end of input"
        if self.kind in ("number", "string"):
            return f"{self.kind} {self.text}"
        return f"'{self.text}'"

    def is_(self, text: str) -> bool:
        """Whether this is the word or symbol `text` (a string token never is)."""
        return self.kind in ("word", "symbol") and self.text == text


def _tokenize(source: str) -> Iterator[_Token]:
    """The tokens of `source`, read as the parser asks, so errors come in the order of the source."""
    position = 0
    while position < len(source):
        space = _SPACE.match(source, position)
        if space:
            position = space.end()
            continue
        token = _token_at(source, position)
        yield token
        position += len(token.text)
    while True:
        yield _Token("end", "", len(source) + 1)


def _token_at(source: str, position: int) -> _Token:
    column = position + 1
    if source[position] in "'\"":
        text, value = _string_at(source, position)
        return _Token("string", text, column, value)
    if number := _NUMBER.match(source, position):
        if glued := _GLUED.match(source, number.end()):
            raise ExprSyntaxError(f"malformed number '{number.group()}{glued.group()}'", column)
        text = number.group()
        return _Token("number", text, column, int(text) if text.isdigit() else float(text))
    for kind, pattern in (("word", _WORD), ("symbol", _SYMBOL)):
        if match := pattern.match(source, position):
            return _Token(kind, match.group(), column)
    character = source[position]
    raise ExprSyntaxError(f"unexpected character {character!r}{_HINTS.get(character, '')}", column)


def _string_at(source: str, start: int) -> tuple[str, str]:
    """The string literal opening at `start`: its source text and its decoded value."""
    quote = source[start]
    decoded: list[str] = []
    position = start + 1
    while position < len(source):
        character = source[position]
        if character == quote:
            return source[start : position + 1], "".join(decoded)
        if character == "\\":
            character, position = _escape_at(source, position)
        else:
            position += 1
        decoded.append(character)
    raise ExprSyntaxError("unterminated string", start + 1)


def _escape_at(source: str, position: int) -> tuple[str, int]:
    """The character the escape at `position` (a backslash) stands for, and where the escape ends."""
    code = source[position + 1 : position + 2]
    if code in _ESCAPES:
        return _ESCAPES[code], position + 2
    if code == "u" and _HEX4.fullmatch(source, position + 2, position + 6):
        return chr(int(source[position + 2 : position + 6], 16)), position + 6
    if code == "u":
        raise ExprSyntaxError("'\\u' needs four hexadecimal digits", position + 1)
    raise ExprSyntaxError(f"unknown escape '\\{code}'", position + 1)


# ---------------------------------------------------------------------------------------------
# Parser: Pratt, with binding powers from loose to tight.

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


class _Parser:
    def __init__(self, tokens: Iterator[_Token]) -> None:
        self._tokens = tokens
        self._current: _Token | None = None  # the token peeked at and not yet consumed
        self._depth = 0  # nesting levels open on the current path, restored by `_expression`
        self._predicates = 0  # predicates of all/any open around the current token: where `#` is allowed

    def parse(self) -> Node:
        tree = self._expression()
        if self._peek().kind != "end":
            self._fail("an operator or end of input")
        return tree

    def _peek(self) -> _Token:
        if self._current is None:
            self._current = next(self._tokens)
        return self._current

    def _advance(self) -> _Token:
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

    def _deepen(self, token: _Token) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ExprSyntaxError(f"expression nests deeper than {MAX_DEPTH} levels", token.column)

    def _expression(self, power: int = 0) -> Node:
        """The longest expression whose operators all bind tighter than `power`."""
        depth = self._depth
        left = self._prefix()
        chained = False
        while infix := self._infix(power):
            token, operator_, binding = infix
            if chained and binding == _COMPARE:
                raise ExprSyntaxError("comparisons do not chain; join them with 'and'", token.column)
            self._deepen(token)
            left = Binary(token.column, operator_, left, self._expression(binding))
            chained = binding == _COMPARE
        self._depth = depth
        return left

    def _infix(self, power: int) -> tuple[_Token, str, int] | None:
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

    def _primary(self, token: _Token) -> Node:
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

    def _word(self, token: _Token) -> Node:
        name = token.text
        if name in _CONSTANTS:
            return Constant(token.column, _CONSTANTS[name])
        if name == "result":
            return Result(token.column)
        if name in ("all", "any"):
            return self._quantifier(token)
        if name == "default":
            return self._default(token)
        if name in _FUNCTIONS:
            arguments = self._arguments(token)
            _FUNCTIONS[name].check_arity(token, len(arguments))
            return Call(token.column, name, tuple(arguments))
        if name in _RESERVED:
            raise ExprSyntaxError(f"expected an expression, found '{name}'", token.column)
        raise ExprSyntaxError(f"unknown name '{name}' (the only variable is result)", token.column)

    def _open(self, function: _Token) -> None:
        """The parenthesis after a function's name, which opens a level of nesting."""
        self._expect("(", f"'(' after {function.text}")
        self._deepen(function)

    def _arguments(self, function: _Token) -> list[Node]:
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

    def _quantifier(self, token: _Token) -> Quantifier:
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

    def _default(self, token: _Token) -> Default:
        arguments = self._arguments(token)
        _check_arity(token, len(arguments), 1, 2)
        if len(arguments) == 1:
            return Default(token.column, Result(token.column), arguments[0])
        return Default(token.column, arguments[0], arguments[1])


def _check_arity(function: _Token, count: int, minimum: int, maximum: int | None) -> None:
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


# ---------------------------------------------------------------------------------------------
# Values


def _is_number(value: Value) -> TypeGuard[Number]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Value) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "map"


def _describe(value: Value) -> str:
    """A value in a message: short, and saying its type."""
    if value is None or isinstance(value, bool):
        return "nil" if value is None else str(value).lower()
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a map"
    text = repr(value)
    return f"{_kind(value)} {text if len(text) <= 40 else text[:37] + '...'}"


def _equal(left: Value, right: Value) -> bool:
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(left[key], right[key]) for key in left)
    return _kind(left) == _kind(right) and left == right


def _truth(value: Value, column: int, context: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ExprEvalError(f"{context} needs true or false, found {_describe(value)}", column)


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
        return _equal(left, right) == (operator_ == "==")
    if operator_ in ("in", "not in"):
        return _contains(column, right, left) == (operator_ == "in")
    if operator_ in _ORDERINGS:
        return _order(column, operator_, left, right)
    return _arithmetic(column, operator_, left, right)


def _order(column: int, operator_: str, left: Value, right: Value) -> bool:
    comparable = (_is_number(left) and _is_number(right)) or (
        isinstance(left, str) and isinstance(right, str)
    )
    if not comparable:
        raise ExprEvalError(f"cannot compare {_kind(left)} with {_kind(right)} using '{operator_}'", column)
    return _ORDERINGS[operator_](left, right)


def _arithmetic(column: int, operator_: str, left: Value, right: Value) -> Value:
    if _is_number(left) and _is_number(right):
        if operator_ in ("/", "%") and right == 0:
            raise ExprEvalError("division by zero", column)
        try:
            return _ARITHMETIC[operator_](left, right)
        except OverflowError:
            raise ExprEvalError("number too large", column) from None
    if operator_ == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    raise ExprEvalError(f"cannot apply '{operator_}' to {_kind(left)} and {_kind(right)}", column)


def _contains(column: int, container: Value, item: Value) -> bool:
    if isinstance(container, list):
        return any(_equal(item, element) for element in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    raise ExprEvalError(f"'in' needs a list or map on its right, found {_describe(container)}", column)


def _lookup(column: int, target: Value, key: Value) -> Value:
    if isinstance(target, dict):
        if not isinstance(key, str):
            raise ExprEvalError(f"a map key must be a string, found {_describe(key)}", column)
        if key not in target:
            raise _Missing(f"no key {key!r} in the map", column)
        return target[key]
    if isinstance(target, list):
        if not (_is_number(key) and (isinstance(key, int) or key.is_integer())):
            raise ExprEvalError(f"a list index must be a whole number, found {_describe(key)}", column)
        if not -len(target) <= key < len(target):
            raise _Missing(f"index {int(key)} is out of range for a list of {len(target)}", column)
        return target[int(key)]
    if target is None:
        raise _Missing(f"cannot look up {_describe(key)} in nil", column)
    raise ExprEvalError(f"cannot look up {_describe(key)} in a {_kind(target)}", column)


# ---------------------------------------------------------------------------------------------
# Functions


class _Refusal(Exception):
    """A function refuses its arguments; the caller adds the function's name and column."""


@dataclass(frozen=True)
class _Function:
    minimum: int
    maximum: int | None
    apply: Callable[[list[Value]], Value]

    def check_arity(self, token: _Token, count: int) -> None:
        _check_arity(token, count, self.minimum, self.maximum)


def _one(function: Callable[[Value], Value]) -> _Function:
    return _Function(1, 1, lambda arguments: function(arguments[0]))


def _aggregate(function: Callable[[list[Number]], Value]) -> _Function:
    """A function of one list, or of numbers given as separate arguments: `max(result)`, `max(a, b)`."""

    def apply(arguments: list[Value]) -> Value:
        values = arguments[0] if len(arguments) == 1 and isinstance(arguments[0], list) else arguments
        numbers = [value for value in values if _is_number(value)]
        if len(numbers) < len(values):
            strays = (value for value in values if not _is_number(value))
            raise _Refusal(f"needs numbers, found {_describe(next(strays))}")
        return function(numbers)

    return _Function(1, None, apply)


def _length(value: Value) -> Value:
    if isinstance(value, list | dict | str):
        return len(value)
    raise _Refusal(f"needs a list, map or string, found {_describe(value)}")


def _absolute(value: Value) -> Value:
    if _is_number(value):
        return abs(value)
    raise _Refusal(f"needs a number, found {_describe(value)}")


def _extreme(pick: Callable[[list[Number]], Number]) -> Callable[[list[Number]], Value]:
    def extreme(numbers: list[Number]) -> Value:
        if not numbers:
            raise _Refusal("of an empty list")
        return math.nan if any(map(_is_nan, numbers)) else pick(numbers)

    return extreme


def _average(numbers: list[Number]) -> Value:
    if not numbers:
        raise _Refusal("of an empty list")
    return sum(numbers) / len(numbers)


def _is_nan(value: Value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_infinite(value: Value) -> bool:
    return isinstance(value, float) and math.isinf(value)


def _as_int(value: Value) -> Value:
    if _is_number(value) or isinstance(value, str):
        with suppress(ValueError):  # NaN, or a string that is no integer
            return int(value)
    raise _Refusal(f"cannot read {_describe(value)} as an integer")


def _as_float(value: Value) -> Value:
    if _is_number(value) or isinstance(value, str):
        with suppress(ValueError):  # a string that is no number
            return float(value)
    raise _Refusal(f"cannot read {_describe(value)} as a number")


_FUNCTIONS: dict[str, _Function] = {
    "len": _one(_length),
    "abs": _one(_absolute),
    "isNaN": _one(_is_nan),
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


# ---------------------------------------------------------------------------------------------
# Evaluation


class _Evaluation:
    """One walk of a tree over one measurement: the elements of open predicates and a step budget."""

    def __init__(self, result: Value) -> None:
        self._result = result
        self._elements: list[Value] = []
        self._steps = 0

    def value(self, node: Node) -> Value:  # noqa: PLR0911, PLR0912 - one case per node type
        self._steps += 1
        if self._steps > MAX_STEPS:
            raise ExprEvalError(f"evaluation takes more than {MAX_STEPS} steps", node.column)
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
        if _is_number(operand):
            return -operand
        raise ExprEvalError(f"cannot negate {_describe(operand)}", node.column)

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
            return _FUNCTIONS[node.function].apply(arguments)
        except _Refusal as refusal:
            raise ExprEvalError(f"{node.function}() {refusal}", node.column) from None
        except OverflowError:
            raise ExprEvalError(f"{node.function}() gives a number too large", node.column) from None

    def _quantify(self, node: Quantifier) -> bool:
        subject = self.value(node.subject)
        if not isinstance(subject, list):
            raise ExprEvalError(
                f"{node.kind}() needs a list, found {_describe(subject)}", node.subject.column
            )
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
        if value is None or _is_nan(value):
            return self.value(node.fallback)
        return value


# ---------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Expression:
    """A parsed condition: parse once when the template is read, evaluate per measurement."""

    source: str
    tree: Node

    def evaluate(self, result: Value) -> Value:
        """The expression's value with `result` bound to the measurement; raises ExprEvalError."""
        return _Evaluation(result).value(self.tree)

    def holds(self, result: Value) -> bool:
        """Whether the condition is true; a condition that gives no boolean is an ExprEvalError."""
        value = self.evaluate(result)
        if not isinstance(value, bool):
            raise ExprEvalError(f"a condition must give true or false, not {_describe(value)}", 1)
        return value


def parse(source: str) -> Expression:
    """The expression in `source`; raises ExprSyntaxError with the column and what was expected."""
    if len(source) > MAX_SOURCE:
        raise ExprSyntaxError(f"expression is longer than {MAX_SOURCE} characters", MAX_SOURCE + 1)
    return Expression(source, _Parser(_tokenize(source)).parse())


def check(source: str) -> str | None:
    """The syntax error in `source` as one line for a status or an admission response, or None."""
    try:
        parse(source)
    except ExprSyntaxError as error:
        return str(error)
    return None
