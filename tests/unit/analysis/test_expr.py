"""The condition language: what it computes, what it refuses, and that text can never run code."""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.analysis.expr import (
    MAX_DEPTH,
    MAX_SOURCE,
    MAX_STEPS,
    ExprEvalError,
    ExprSyntaxError,
    Value,
    check,
    parse,
)

NAN = math.nan
VECTOR: Value = [0.01, 0.02, 0.03]
WEB: Value = {
    "status": "ok",
    "data": {"errors": 3, "rate": 0.5, "items": [1, 2, 3]},
    "empty": None,
    "nan": NAN,
}

VALID: list[tuple[str, Value, Value]] = [
    # precedence and arithmetic
    ("1 + 2 * 3", None, 7),
    ("(1 + 2) * 3", None, 9),
    ("10 - 4 - 3", None, 3),
    ("2 * 3 % 4", None, 2),
    ("7 / 2", None, 3.5),
    ("-2 * -3", None, 6),
    ("- result", 2.5, -2.5),
    ("-7 % 3", None, 2),
    ("1.5e3", None, 1500.0),
    ("2E-2 == 0.02", None, True),
    ("1e308 * 10 > 1e308", None, True),
    ("1 == 1.0", None, True),
    # comparisons and logic
    ("result < 0.05", 0.01, True),
    ("result >= 0.05", 0.05, True),
    ("result <= 1 and result > 0", 0.5, True),
    ("result > 1 or result < 0", 0.5, False),
    ("not result > 1", 0.5, True),
    ("not true == false", None, True),
    ("!(result > 1) && true", 0.5, True),
    ("true || false && false", None, True),
    ("(1 < 2) == true", None, True),
    ("nil == nil", None, True),
    ("result == nil", None, True),
    ("result != nil", 0, True),
    ("1 == true", None, False),
    ("1 == '1'", None, False),
    # strings
    ("'a' == \"a\"", None, True),
    ("'abc' < 'abd'", None, True),
    ("'B' < 'a'", None, True),
    ("'line\\n' == \"line\\u000a\"", None, True),
    ("'it\\'s' + \"!\"", None, "it's!"),
    ("len('héllo')", None, 5),
    # vectors
    ("result[0]", VECTOR, 0.01),
    ("result[-1]", VECTOR, 0.03),
    ("result[1 + 1]", VECTOR, 0.03),
    ("result[1.0]", VECTOR, 0.02),
    ("len(result)", VECTOR, 3),
    ("all(result, # < 0.05)", VECTOR, True),
    ("all(result, {# < 0.025})", VECTOR, False),
    ("any(result, # > 0.025)", VECTOR, True),
    ("any(result, # > 1)", VECTOR, False),
    ("all([], # > 1)", None, True),
    ("any([], # > 1)", None, False),
    ("all([[1, 2], [3]], any(#, # >= 2))", None, True),
    ("[1, [2]] == [1, [2.0]]", None, True),
    ("4 not in [1, 2, 3]", None, True),
    # maps (web JSON)
    ("result.status == 'ok'", WEB, True),
    ("result['data']['errors'] / 6", WEB, 0.5),
    ("result.data.items[2]", WEB, 3),
    ("'status' in result", WEB, True),
    ("2 in result.data.items", WEB, True),
    ("any(result.data.items, # == 2)", WEB, True),
    ("len(result.data)", WEB, 3),
    # NaN, infinity, nil and defaults
    ("isNaN(result)", NAN, True),
    ("isNaN(result) or result < 1", NAN, True),
    ("result < 1", NAN, False),
    ("result == result", NAN, False),
    ("isNaN('NaN')", None, False),
    ("isInf(result)", -math.inf, True),
    ("isNil(result.empty)", WEB, True),
    ("default(result.missing, 7)", WEB, 7),
    ("default(result.nan, 0) == 0", WEB, True),
    ("default(result.data.rate, 0)", WEB, 0.5),
    ("default(result.data.missing.deeper, -1)", WEB, -1),
    ("default(result[7], 0)", VECTOR, 0),
    ("default(9)", None, 9),
    ("default(9)", 4, 4),
    # aggregates and conversions
    ("abs(-3) + abs(2.5)", None, 5.5),
    ("min(result)", VECTOR, 0.01),
    ("max(3, 1, 2)", None, 3),
    ("sum(result.data.items)", WEB, 6),
    ("sum([])", None, 0),
    ("avg([1, 2, 3, 4])", None, 2.5),
    ("mean(result) == 0.02", VECTOR, True),
    ("isNaN(max(result))", [1.0, NAN], True),
    ("asFloat('0.25') * 4", None, 1.0),
    ("asInt('42') + asInt(-2.7)", None, 40),
    ("asInt(result.data.rate * 10)", WEB, 5),
    # short-circuits: the right side would fail if it were evaluated
    ("false and 1 / 0 > 0", None, False),
    ("true or result.missing", WEB, True),
    ("any(result, # > 0) or 1 / 0 > 0", VECTOR, True),
    ("any([1, 0], 1 / # > 0)", None, True),
    ("all([0, 1], # > 0 and 1 / # > 0)", None, False),
]


@pytest.mark.parametrize(("source", "result", "expected"), VALID, ids=[case[0] for case in VALID])
def test_valid_expression(source: str, result: Value, expected: Value) -> None:
    value = parse(source).evaluate(result)
    assert value == expected
    assert type(value) is type(expected)
    assert check(source) is None


MALFORMED: list[tuple[str, str, int]] = [
    ("", "expected an expression, found end of input", 1),
    ("   ", "expected an expression, found end of input", 4),
    ("1 +", "expected an expression, found end of input", 4),
    ("(1 + 2", "expected ')', found end of input", 7),
    ("1 2", "expected an operator or end of input, found number 2", 3),
    ("result(1)", "expected an operator or end of input, found '('", 7),
    ("foo > 1", "unknown name 'foo'", 1),
    ("and true", "expected an expression, found 'and'", 1),
    ("not", "expected an expression, found end of input", 4),
    ("()", "expected an expression, found ')'", 2),
    ("{1}", "expected an expression, found '{'", 1),
    ("1 ** 2", "expected an expression, found '*'", 4),
    ("result = 1", "unexpected character '=' (did you mean '=='?)", 8),
    ("result & 1", "did you mean '&&'?", 8),
    ("result @ 2", "unexpected character '@'", 8),
    ("1 < 2 < 3", "comparisons do not chain", 7),
    ("1 < 2 == true", "comparisons do not chain", 7),
    ("1 not 2", "expected 'in' after 'not', found number 2", 7),
    ("# > 1", "'#' is only allowed inside the predicate of all() or any()", 1),
    ("len", "expected '(' after len, found end of input", 4),
    ("len(result, 1)", "len() takes 1 argument, got 2", 1),
    ("min()", "min() takes at least 1 argument, got 0", 1),
    ("default(1, 2, 3)", "default() takes 1 or 2 arguments, got 3", 1),
    ("all(result)", "expected ',' and a predicate after the list, found ')'", 11),
    ("all(result, {# > 1)", "expected '}', found ')'", 19),
    ("result.", "expected a field name after '.', found end of input", 8),
    ("result.1", "expected a field name after '.', found number 1", 8),
    ("result[]", "expected an expression, found ']'", 8),
    ("[1, 2", "expected ',' or ']', found end of input", 6),
    ("'abc", "unterminated string", 1),
    ("'\\q'", "unknown escape '\\q'", 2),
    ("'\\u12'", "'\\u' needs four hexadecimal digits", 2),
    ("1e", "malformed number '1e'", 1),
    ("x + 1.e5", "unknown name 'x'", 1),
    ("1 + 1.e5", "malformed number '1.e5'", 5),
    ("x" * (MAX_SOURCE + 1), f"longer than {MAX_SOURCE} characters", MAX_SOURCE + 1),
    ("(" * 60 + "1" + ")" * 60, f"nests deeper than {MAX_DEPTH} levels", 51),
    ("-" * 60 + "1", f"nests deeper than {MAX_DEPTH} levels", 51),
    ("+".join(["1"] * 60), f"nests deeper than {MAX_DEPTH} levels", 102),
    ("result" + ".a" * 60, f"nests deeper than {MAX_DEPTH} levels", 107),
]


@pytest.mark.parametrize(("source", "message", "column"), MALFORMED, ids=[case[0][:40] for case in MALFORMED])
def test_malformed_expression(source: str, message: str, column: int) -> None:
    with pytest.raises(ExprSyntaxError) as raised:
        parse(source)
    assert message in raised.value.message
    assert raised.value.column == column
    assert check(source) == f"column {column}: {raised.value.message}"


EVALUATION_ERRORS: list[tuple[str, Value, str, int]] = [
    ("result < 'a'", 1.0, "cannot compare number with string using '<'", 8),
    ("result[3]", VECTOR, "index 3 is out of range for a list of 3", 7),
    ("result[0.5]", VECTOR, "a list index must be a whole number, found number 0.5", 7),
    ("result['a']", VECTOR, "a list index must be a whole number, found string 'a'", 7),
    ("result.missing", WEB, "no key 'missing' in the map", 7),
    ("result.__class__", WEB, "no key '__class__' in the map", 7),
    ("result.__class__", 1.0, "cannot look up string '__class__' in a number", 7),
    ("result.empty.x", WEB, "cannot look up string 'x' in nil", 13),
    ("1 / 0", None, "division by zero", 3),
    ("1 % 0.0", None, "division by zero", 3),
    ("result + 1", VECTOR, "cannot apply '+' to list and number", 8),
    ("true + 1", None, "cannot apply '+' to boolean and number", 6),
    ("'a' * 3", None, "cannot apply '*' to string and number", 5),
    ("-'a'", None, "cannot negate string 'a'", 1),
    ("result and true", 1.0, "'and' needs true or false, found number 1.0", 1),
    ("not result", None, "'not' needs true or false, found nil", 1),
    ("len(5)", None, "len() needs a list, map or string, found number 5", 1),
    ("all(result, # > 0)", 1.0, "all() needs a list, found number 1.0", 5),
    ("any(result, #)", [1.0], "the predicate needs true or false, found number 1.0", 13),
    ("avg([])", None, "avg() of an empty list", 1),
    ("max(result)", ["a"], "max() needs numbers, found string 'a'", 1),
    ("asFloat('abc')", None, "asFloat() cannot read string 'abc' as a number", 1),
    ("asInt('1.5')", None, "asInt() cannot read string '1.5' as an integer", 1),
    ("1 in 5", None, "'in' needs a list or map on its right, found number 5", 3),
    ("9" * 400 + " + 0.5", None, "number too large", 402),
    ("'abc'[0]", None, "cannot look up number 0 in a string", 6),
]


@pytest.mark.parametrize(
    ("source", "result", "message", "column"),
    EVALUATION_ERRORS,
    ids=[case[0][:40] for case in EVALUATION_ERRORS],
)
def test_evaluation_error(source: str, result: Value, message: str, column: int) -> None:
    expression = parse(source)
    with pytest.raises(ExprEvalError) as raised:
        expression.evaluate(result)
    assert raised.value.message == message
    assert raised.value.column == column


def test_a_condition_must_give_a_boolean() -> None:
    assert parse("result > 1").holds(2) is True
    with pytest.raises(ExprEvalError, match="must give true or false, not number 3"):
        parse("result + 1").holds(2)


def test_evaluation_has_a_step_budget() -> None:
    """A predicate nested in predicates over a vector would take n³ steps: it is cut off."""
    expression = parse("all(result, all(result, all(result, # > 0)))")
    with pytest.raises(ExprEvalError, match=f"more than {MAX_STEPS} steps"):
        expression.evaluate([1.0] * 100)


# Forms of Argo Rollouts' expr that this language refuses, as the package docstring lists them: each
# is a syntax error when the template is applied, never a condition that quietly means something else.
ARGO_ONLY = [
    "1 < result < 2",
    "result > 0 ? 1 : 0",
    "if true { 1 } else { 2 }",
    "result ?? 0",
    "result?.a",
    "2 ** 3",
    "2 ^ 3",
    "1..3",
    "result[1:2]",
    "result | len()",
    "let x = 1; x",
    "$env",
    "all(result, .a > 1)",
    "result matches 'a'",
    "result contains 'a'",
    "result startsWith 'a'",
    "result endsWith 'a'",
    "none(result, # > 1)",
    "filter(result, # > 1)",
    "sum(result, # > 1)",
    "upper('a')",
    "int('1')",
    "median(result)",
    "now()",
    "// comment\n1",
    "/* comment */ 1",
    "`raw`",
    "b'x'",
    "'\\a'",
    "0x2A",
    "0o52",
    "0b101010",
    "1_000",
    ".5",
    "{a: 1}",
    "+1",
]


@pytest.mark.parametrize("source", ARGO_ONLY)
def test_argo_only_forms_are_refused_when_parsing(source: str) -> None:
    with pytest.raises(ExprSyntaxError):
        parse(source)


HOSTILE = [
    "__import__('os').system('touch /tmp/pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "result.__class__.__mro__",
    "lambda: 1",
    "f'{result}'",
    "[x for x in result]",
    "eval('1')",
    "exec('import os')",
    "open('/etc/passwd').read()",
    "result; import os",
    "getattr(result, '__class__')",
    "result if true else 1",
    "`id`",
    "${result}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_code_is_never_run(source: str) -> None:
    with pytest.raises((ExprSyntaxError, ExprEvalError)), _no_dynamic_code():
        parse(source).evaluate(WEB)


@contextmanager
def _no_dynamic_code() -> Iterator[None]:
    """Python's own evaluators raise while the expression is parsed and evaluated."""
    refusals = {
        name: mock.Mock(side_effect=AssertionError(f"{name} called")) for name in ("eval", "exec", "compile")
    }
    with mock.patch.dict(builtins.__dict__, refusals):
        yield


# Pieces of the language, so that random sources often get past the tokenizer into the parser.
LANGUAGE = (
    "0 1 2.5 1e3 'a' \"b\" ( ) [ ] { } , . # + - * / % < > == != <= >= && || ! = "
    "result true false nil and or not in len all any isNaN isInf isNil default abs min max "
    "sum avg mean asInt asFloat x __class__"
)
PIECES = LANGUAGE.split()
RESULTS: list[Value] = [None, 0.5, NAN, VECTOR, WEB, "text", [[1, 2], []]]


def _outcome_of(source: str) -> None:
    """Parse and evaluate `source` against every kind of result: only the language's errors escape."""
    try:
        expression = parse(source)
    except ExprSyntaxError:
        return
    for result in RESULTS:
        try:
            expression.evaluate(result)
        except ExprEvalError:
            continue


@settings(max_examples=300, deadline=timedelta(milliseconds=500))
@given(st.text(max_size=120))
def test_arbitrary_text_gives_a_value_or_an_error(source: str) -> None:
    with _no_dynamic_code():
        _outcome_of(source)


@settings(max_examples=500, deadline=timedelta(milliseconds=500))
@given(st.lists(st.sampled_from(PIECES), max_size=40).map(" ".join))
def test_arbitrary_token_soup_gives_a_value_or_an_error(source: str) -> None:
    with _no_dynamic_code():
        _outcome_of(source)


ATOMS = st.sampled_from(
    ["0", "2.5", "1e3", "'a'", "true", "nil", "result", "[1, 'b']", "result.data", "result[0]"]
)
BINARY = ["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "and", "or", "in", "not in"]
UNARY = ["-", "not ", "!"]
FUNCTIONS = [
    "len",
    "abs",
    "isNaN",
    "isInf",
    "isNil",
    "default",
    "min",
    "max",
    "sum",
    "avg",
    "asInt",
    "asFloat",
]


def _compose(parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(parts, st.sampled_from(BINARY), parts).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(UNARY), parts).map("".join),
        st.tuples(st.sampled_from(FUNCTIONS), parts).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["all", "any"]), parts, parts).map(
            lambda t: f"{t[0]}({t[1]}, # == {t[2]})"
        ),
        st.tuples(parts, parts).map(lambda t: f"{t[0]}[{t[1]}]"),
    )


@settings(max_examples=300, deadline=timedelta(milliseconds=500))
@given(st.recursive(ATOMS, _compose, max_leaves=12))
def test_well_formed_expressions_parse_and_evaluate_or_refuse(source: str) -> None:
    expression = parse(source)
    for result in RESULTS:
        try:
            expression.evaluate(result)
        except ExprEvalError:
            continue


@settings(max_examples=50, deadline=timedelta(milliseconds=500))
@given(st.text(alphabet="([-!", min_size=MAX_DEPTH, max_size=MAX_SOURCE))
def test_deep_nesting_is_refused_not_a_crash(source: str) -> None:
    _outcome_of(source)
