"""The `web` provider: an HTTP request whose JSON answer (or a part of it) is the measurement.

A status other than 2xx, a body that is not JSON, a JSON path that finds nothing, no complete
answer within `timeoutSeconds` (10 by default; the whole request, body included), an answer larger
than `bounded.MAX_BODY` (1 MiB), an address the egress policy refuses: each is an error
measurement that names the URL and what went wrong (with at most a short printable excerpt of the
answer), never a value.

`jsonPath` takes the subset of JSONPath (as in kubectl's `{$.a.b[0]}`) that picks one value:
`$`, `.key`, `['key']` and `[index]`, braces optional.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import httpx

from delivery.analysis import bounded
from delivery.analysis.egress import Egress
from delivery.analysis.expr import Value
from delivery.analysis.provider import Unmeasurable
from delivery.api.analysis import Web

_SEGMENT = re.compile(r"""\.([A-Za-z_][-\w]*)|\[(-?\d+)\]|\[['"]([^'"]*)['"]\]""")


def pick(document: Value, path: str) -> Value:
    """The value at `path` in `document`; Unmeasurable when the path is malformed or finds nothing."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text.startswith("$"):
        raise Unmeasurable(f"jsonPath {path!r} must start with $")
    position, value = 1, document
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            raise Unmeasurable(f"jsonPath {path!r} cannot be read at character {position + 1}")
        key, index, quoted = match.groups()
        try:
            if index is not None:
                if not isinstance(value, list):
                    raise LookupError
                value = value[int(index)]
            else:
                if not isinstance(value, dict):
                    raise LookupError
                value = value[key if key is not None else quoted]
        except LookupError as error:
            raise Unmeasurable(f"jsonPath {path!r}: nothing at {text[: match.end()]!r}") from error
        position = match.end()
    return value


async def fetch(spec: Web, headers: Mapping[str, str], *, egress: Egress) -> Value:
    """The measurement of a web metric; `headers` have their values (from Secrets) already read."""
    content = spec.body.encode() if spec.body is not None else None
    if spec.json_body is not None:
        content = json.dumps(spec.json_body).encode()
        headers = {"Content-Type": "application/json", **headers}
    answer = await bounded.request(
        spec.url,
        spec.method.value,
        spec.url,
        spec.timeout_seconds,
        egress=egress,
        headers=headers,
        content=content,
    )
    if not httpx.codes.is_success(answer.status):
        raise Unmeasurable(f"{spec.url} answered HTTP {answer.status}: {answer.excerpt()}")
    try:
        document: Value = json.loads(answer.body)
    except ValueError as error:
        raise Unmeasurable(f"{spec.url} did not answer JSON: {answer.excerpt()}") from error
    return pick(document, spec.json_path) if spec.json_path else document
