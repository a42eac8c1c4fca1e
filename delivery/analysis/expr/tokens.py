"""The tokenizer: source text to numbers, strings, words and symbols, each with its column.

Tokens are read lazily, as the parser asks for them, so the first error reported is the first in
the source, whether the tokenizer or the parser finds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from delivery.analysis.expr.errors import ExprSyntaxError
from delivery.analysis.expr.values import Scalar

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
class Token:
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


def tokenize(source: str) -> Iterator[Token]:
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
        yield Token("end", "", len(source) + 1)


def _token_at(source: str, position: int) -> Token:
    column = position + 1
    if source[position] in "'\"":
        text, value = _string_at(source, position)
        return Token("string", text, column, value)
    if number := _NUMBER.match(source, position):
        if glued := _GLUED.match(source, number.end()):
            raise ExprSyntaxError(f"malformed number '{number.group()}{glued.group()}'", column)
        text = number.group()
        return Token("number", text, column, int(text) if text.isdigit() else float(text))
    for kind, pattern in (("word", _WORD), ("symbol", _SYMBOL)):
        if match := pattern.match(source, position):
            return Token(kind, match.group(), column)
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
