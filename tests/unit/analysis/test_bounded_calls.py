"""Every provider's call is bounded, against real servers on loopback: an answer that drips, one that
never comes and one of 100 MiB each give an error measurement within the deadline, and the huge one
is not read past the cap. Good answers read as before (the same requests, the same values)."""

from __future__ import annotations

import datetime
import json
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest

from delivery.analysis import prometheus, web
from delivery.analysis.bounded import MAX_BODY
from delivery.analysis.expr import Value
from delivery.analysis.provider import Unmeasurable, Verdict
from delivery.api.analysis import Judge, Web
from tests.analysis_egress import POLICY
from tests.unit.analysis.conftest import HUGE, Loopback

pytestmark = pytest.mark.faults

DEADLINE = 2  # seconds; the drip's byte a second keeps a per-operation timeout this long from firing
SLACK = 1.0  # seconds past the deadline a loaded machine may take to report it
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def prometheus_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "TIMEOUT", float(DEADLINE))


async def _web(base: str) -> Value:
    return await web.fetch(Web.model_validate({"url": base, "timeoutSeconds": DEADLINE}), {}, egress=POLICY)


async def _prometheus(base: str) -> Value:
    return await prometheus.query(base, "up", egress=POLICY)


async def _judge(base: str) -> Verdict:
    spec = Judge.model_validate({"canaryQuery": "canary", "stableQuery": "stable"})
    return await prometheus.compare(
        base, spec, "latency", T0, T0 + datetime.timedelta(minutes=5), egress=POLICY
    )


PROVIDERS: dict[str, Callable[[str], Awaitable[object]]] = {
    "web": _web,
    "prometheus": _prometheus,
    "judge": _judge,  # two range queries at once
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["drip", "hang"])
async def test_an_answer_that_never_completes_is_an_error_at_the_deadline(
    loopback: Loopback, provider: str, mode: str
) -> None:
    started = time.monotonic()
    with pytest.raises(Unmeasurable, match=f"did not answer in full within {DEADLINE}s"):
        await PROVIDERS[provider](f"{loopback.url}/{mode}")
    assert time.monotonic() - started < DEADLINE + SLACK


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_huge_answer_is_an_error_and_is_not_read_past_the_cap(
    loopback: Loopback, provider: str
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(Unmeasurable, match=r"response exceeded 1 MiB \(HTTP 200\)"):
            await PROVIDERS[provider](f"{loopback.url}/huge")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_BODY  # the whole process, server thread included: nowhere near 100 MiB
    # The connection closed once the cap was passed: the rest never left the server (what did fits
    # in the sockets' buffers).
    assert all(sent < HUGE // 4 for sent in loopback.huge_ended())


async def test_a_body_of_exactly_the_cap_is_read_and_one_byte_more_is_not(loopback: Loopback) -> None:
    largest = json.dumps("x" * (MAX_BODY - 2)).encode()
    assert len(largest) == MAX_BODY
    loopback.answers["/largest"] = (200, largest)
    loopback.answers["/larger"] = (200, largest + b" ")
    assert await _web(f"{loopback.url}/largest") == "x" * (MAX_BODY - 2)
    with pytest.raises(Unmeasurable, match="exceeded 1 MiB"):
        await _web(f"{loopback.url}/larger")


async def test_a_web_metric_sends_its_request_and_reads_the_answer(loopback: Loopback) -> None:
    loopback.answers["/health"] = (200, json.dumps({"data": {"ok": True}}).encode())
    spec = Web.model_validate(
        {"url": f"{loopback.url}/health?x=1", "method": "POST", "body": "{}", "jsonPath": "$.data.ok"}
    )
    assert await web.fetch(spec, {"Authorization": "token"}, egress=POLICY) is True
    (seen,) = loopback.seen
    assert (seen.method, seen.path, seen.query, seen.body) == ("POST", "/health", {"x": ["1"]}, b"{}")
    assert seen.headers["authorization"] == "token"
    assert seen.headers["accept-encoding"] == "identity"  # so the cap bounds memory too


async def test_a_web_metric_may_ask_for_another_encoding(loopback: Loopback) -> None:
    loopback.answers["/health"] = (200, b"true")
    spec = Web.model_validate({"url": f"{loopback.url}/health"})
    assert await web.fetch(spec, {"accept-encoding": "gzip"}, egress=POLICY) is True
    (seen,) = loopback.seen
    assert seen.headers["accept-encoding"] == "gzip"


async def test_a_web_error_status_says_the_start_of_its_body(loopback: Loopback) -> None:
    loopback.answers["/down"] = (503, b"maintenance " * 100)
    with pytest.raises(Unmeasurable, match=r"answered HTTP 503: (maintenance ){16}mainten…$"):
        await _web(f"{loopback.url}/down")


def _vector(*values: str) -> bytes:
    result = [{"metric": {"pod": str(n)}, "value": [1767225600, v]} for n, v in enumerate(values)]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


async def test_an_instant_query_is_the_api_s_and_its_result_the_value(loopback: Loopback) -> None:
    loopback.answers["/prom/api/v1/query"] = (200, _vector("0.25", "NaN"))
    value = await prometheus.query(f"{loopback.url}/prom/", 'rate(errors{job="web"}[1m])', egress=POLICY)
    assert isinstance(value, list)
    assert value[0] == 0.25
    (seen,) = loopback.seen
    assert (seen.method, seen.path) == ("GET", "/prom/api/v1/query")
    assert seen.query == {"query": ['rate(errors{job="web"}[1m])']}


async def test_a_range_query_sends_the_window_in_whole_seconds(loopback: Loopback) -> None:
    series = [{"metric": {}, "values": [[1767225600, "1"], [1767225601, "2"]]}, {"metric": {}, "values": []}]
    body = {"status": "success", "data": {"resultType": "matrix", "result": series}}
    loopback.answers["/api/v1/query_range"] = (200, json.dumps(body).encode())
    end = T0 + datetime.timedelta(seconds=90.6)
    assert await prometheus.samples(loopback.url, "latency", T0, end, "15s", egress=POLICY) == [1.0, 2.0]
    (seen,) = loopback.seen
    start = str(round(T0.timestamp()))
    assert seen.query == {
        "query": ["latency"],
        "start": [start],
        "end": [str(int(start) + 91)],
        "step": ["15s"],
    }


async def test_a_prometheus_error_status_is_a_refused_query(loopback: Loopback) -> None:
    loopback.answers["/api/v1/query"] = (400, b'{"status":"error","error":"parse error"}')
    with pytest.raises(Unmeasurable, match=r"refused the query: HTTP 400: .*parse error"):
        await prometheus.query(loopback.url, "up{", egress=POLICY)
