"""The condition language of `successCondition` and `failureCondition`: parsed, never `eval`-ed.

A measurement's conditions are written by whoever writes an AnalysisTemplate, so they are untrusted
text that decides whether a canary is promoted. They are tokenized (`tokens`), parsed into a tree
(`parser`, `tree`) and evaluated by walking that tree (`evaluator`): no Python `eval`, `exec`,
`compile` or attribute access is ever reached, and the only callables are the fixed table in
`functions`. `budget` holds the limits on size, nesting and steps. The syntax follows the `expr`
language Argo Rollouts users know (github.com/expr-lang/expr, v1.17, as Argo Rollouts uses it);
the last section lists where it departs.

Values: numbers (`3`, `0.5`, `1.5e-3`; integers and floats compare and compute together), strings
(`'…'` or `"…"`, escapes `\\\\ \\' \\" \\n \\t \\r \\uXXXX`), `true`, `false`, `nil`, lists
(`[1, 2]`), and the one variable `result`: the measurement, a number, a list of numbers for a vector,
or any JSON value for a web metric.

Operators, from the loosest to the tightest binding:
    `or` `||`    `and` `&&`    `not` `!`    `== != < <= > >= in` `not in`    `+ -`    `* / %`
    unary `-`    `x[i]` `x["key"]` `x.key`
- `not` binds looser than comparisons, as in Python: `not result > 1` is `not (result > 1)`.
- Comparisons do not chain: `1 < x < 2` is a syntax error; write `1 < x and x < 2`.
- `and`, `or`, `not` need booleans (no truthiness) and short-circuit: `false and 1/0 > 0` is false.
- `==` and `!=` compare any two values: different types are unequal (`1 == true` is false), numbers
  compare by value (`1 == 1.0`), lists and maps element by element, NaN equals nothing.
- `< <= > >=` order two numbers or two strings (by code point); anything else is an error.
- `+` adds numbers or joins strings; `/` always divides exactly (`7 / 2` is 3.5); `%` takes the
  sign of the divisor, as in Python; dividing by zero is an error, so a rate over zero requests
  says so instead of quietly failing a comparison.
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
  `default(fallback)` is `default(result, fallback)`.
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

Differences from Argo Rollouts' `expr`. A condition written for Argo Rollouts that uses only
`result`, numbers, strings, comparisons, `and`/`or`/`not`, `+ - * /`, `[i]`, `.key`, `in`,
`len`, `all`/`any` with `#`, `abs`, `min`/`max`/`sum`/`mean`, `isNaN`, `isInf`, `asInt`, `asFloat`
and `default(result, x)` means the same here, with these exceptions (each refused form is a syntax
error when the template is applied, unless it says otherwise):
- Binding of `not`/`!`: expr binds it tighter than comparisons and `+`, so there `not result > 1`
  is `(not result) > 1`, an error for a number; here it is `not (result > 1)`.
- Chained comparisons: expr reads `1 < x < 2` as `1 < x and x < 2` and `1 < 2 == true` as
  `(1 < 2) == true`; both are refused here.
- `/` and `%` by zero: expr gives +Inf or NaN for `/` and a runtime error for `%`; here both are an
  evaluation error. `%`: expr takes integers only, with the sign of the dividend (`-7 % 3` is -1);
  here floats too, with the sign of the divisor (`-7 % 3` is 2). Integers here do not overflow
  (expr's are 64-bit); a float too large is an evaluation error.
- A missing map key: expr gives `nil` (`result.missing == nil` is true); here it is an evaluation
  error, which `default(result.missing, x)` turns into x. An index must be a whole number (expr
  truncates `result[0.5]` to `result[0]`), and strings cannot be indexed (expr's `"abc"[0]`).
- Argo's `isNil(x)` and `default(x, fallback)` ignore x and ask whether the whole `result` is nil,
  so there `default(result.data.rate, 0)` gives the whole result; here both ask about x, and
  `default` also replaces NaN and a missing key or index. Argo's `default` takes exactly two
  arguments; the one-argument `default(fallback)` is ours.
- Argo's `isNaN` and `isInf` are Go's, on a float; here any value may be asked (a non-number is
  neither). `avg` is ours, beside expr's `mean`.
- Refused literals: `//` and `/* */` comments; backtick raw strings, `b"…"` bytes; escapes other
  than `\\\\ \\' \\" \\n \\t \\r \\uXXXX`; `0x2A`, `0o52`, `0b101010`, `1_000`, `.5`; map literals
  `{a: 1}`; unary `+`.
- Refused operators: the ternary `c ? a : b`, `if {} else {}`, `??`, `?.`, `**` and `^`, the
  string operators `contains`, `startsWith`, `endsWith` and `matches` (regular expressions), the
  range `1..3`, slices `x[1:3]`, the pipe `|`, `let` and `$env`, and `.field` as shorthand for
  `#.field` in a predicate.
- Refused functions (unknown names): the other predicates `none`, `one`, `filter`, `map`, `find`,
  `findIndex`, `findLast`, `findLastIndex`, `count`, `groupBy`, `sortBy`, `reduce`, and `sum` with a
  predicate; string functions (`trim`, `upper`, `lower`, `split`, `replace`, `indexOf`, `hasPrefix`,
  ...); `ceil`, `floor`, `round`, `median`; conversions `int`, `float`, `string`, `type`, `toJSON`,
  `fromJSON`; dates (`now`, `duration`, `date`); list and map functions (`first`, `last`, `take`,
  `keys`, `values`, `sort`, `reverse`, `uniq`, `concat`, `flatten`, ...); bitwise functions.
- Limits: expr caps a program at 10,000 nodes and a run's memory; here a source is at most
  `MAX_SOURCE` characters, `MAX_DEPTH` levels deep, and an evaluation at most `MAX_STEPS` steps.
"""

from delivery.analysis.expr.budget import MAX_DEPTH, MAX_SOURCE, MAX_STEPS
from delivery.analysis.expr.errors import ExprError, ExprEvalError, ExprSyntaxError
from delivery.analysis.expr.expression import Expression, check, parse
from delivery.analysis.expr.values import Value

__all__ = [
    "MAX_DEPTH",
    "MAX_SOURCE",
    "MAX_STEPS",
    "ExprError",
    "ExprEvalError",
    "ExprSyntaxError",
    "Expression",
    "Value",
    "check",
    "parse",
]
