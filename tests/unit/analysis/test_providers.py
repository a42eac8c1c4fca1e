"""What the providers make of an answer: Prometheus' result shapes, JSON paths into web answers, and
the errors (never values) of a Prometheus that is unreachable, slow or answering garbage."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from delivery.analysis import prometheus
from delivery.analysis.expr import Value
from delivery.analysis.prometheus import value_of
from delivery.analysis.provider import Unmeasurable
from delivery.analysis.web import pick
from tests.analysis_egress import POLICY


def test_a_scalar_is_a_number_and_a_vector_a_list() -> None:
    assert value_of([1700000000.5, "0.25"]) == 0.25
    assert value_of([{"metric": {"a": "1"}, "value": [1.0, "3"]}, {"metric": {}, "value": [1.0, "4"]}]) == [
        3,
        4,
    ]
    assert value_of([]) == []  # no series matched: the conditions decide (default(), len())


def test_special_sample_values_become_floats() -> None:
    value = value_of([{"metric": {}, "value": [1.0, "NaN"]}, {"metric": {}, "value": [1.0, "+Inf"]}])
    assert isinstance(value, list)
    assert math.isnan(value[0])  # type: ignore[arg-type]
    assert value[1] == math.inf


def test_a_string_result_is_a_string() -> None:
    assert value_of([1.0, "canary"]) == "canary"


@pytest.mark.parametrize(
    ("result", "says"),
    [
        ([{"metric": {}, "values": [[1.0, "1"]]}], "range vector"),
        ({"resultType": "vector"}, "not a Prometheus query result"),
        ([{"metric": {}, "value": [1.0, "many"]}], "not a sample value"),
        ("<html>", "not a Prometheus query result"),
    ],
)
def test_other_shapes_are_errors_that_say_so(result: Any, says: str) -> None:
    with pytest.raises(Unmeasurable, match=says):
        value_of(result)


DOCUMENT: Value = {"data": {"ok": True, "rates": [0.1, 0.2], "by-zone": {"eu": 3}}}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOCUMENT),
        ("{$.data.ok}", True),
        ("$.data.rates[1]", 0.2),
        ("$.data.rates[-1]", 0.2),
        ("$.data['by-zone'].eu", 3),
        ("{ $.data.by-zone.eu }", 3),
    ],
)
def test_json_paths_pick_one_value(path: str, value: Any) -> None:
    assert pick(DOCUMENT, path) == value


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("data.ok", "must start with \\$"),
        ("$.data.missing", "nothing at '\\$.data.missing'"),
        ("$.data.rates[5]", "nothing at"),
        ("$.data.ok.deeper", "nothing at"),
        ("$.data..ok", "cannot be read at character 7"),
        ("$[0]", "nothing at"),
    ],
)
def test_json_paths_that_find_nothing_are_errors(path: str, says: str) -> None:
    with pytest.raises(Unmeasurable, match=says):
        pick(DOCUMENT, path)


class _Misbehaving(BaseHTTPRequestHandler):
    """A Prometheus that answers garbage, an error, or too late (the path says which)."""

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(2)
        status, body = (500, b"oops") if self.path.startswith("/error") else (200, b"<html>not json</html>")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture(scope="module")
def misbehaving() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.mark.parametrize(
    ("path", "says"),
    [("", "answered garbage"), ("/error", "refused the query"), ("/slow", "did not answer in full within")],
)
async def test_a_misbehaving_prometheus_is_an_error_that_says_how(
    misbehaving: str, path: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prometheus, "TIMEOUT", 0.5)
    with pytest.raises(Unmeasurable, match=says):
        await prometheus.query(misbehaving + path, "up", egress=POLICY)


async def test_an_unreachable_prometheus_is_an_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unmeasurable, match="unreachable"):
        await prometheus.query(f"http://127.0.0.1:{port}", "up", egress=POLICY)
