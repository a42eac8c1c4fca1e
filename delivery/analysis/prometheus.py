"""The `prometheus` provider and the judge's samples, read from Prometheus' HTTP API.

Each query is one `bounded.request`: the whole of it (connect, answer, body) within TIMEOUT, the
body at most MAX_BODY, so a Prometheus that hangs, drips its answer or sends far too much gives an
error measurement in time and holds neither a worker nor memory. (prometheus-api-client reads
the whole body whatever its size, synchronously, in a thread that no deadline can stop: every
stuck query would keep a thread.) Each goes only where the egress policy allows, its redirects
too, and what of an answer reaches a message is a short printable excerpt. The requests and their
reading are that client's: GET `/api/v1/query` with `query`, GET `/api/v1/query_range` with
`query`, `start` and `end` (whole seconds) and `step`, redirects followed, a status other than 200
refused, `data.result` of the JSON the result. It does not retry (one measurement, one request):
the runner retries errors on its own schedule.

An instant query gives a scalar (`result` is a number), a vector (`result` is a list of numbers,
one per series, `[]` when no series matches) or a string. A range vector (matrix) is refused with
a message: a condition over it would be ambiguous. Values that are not numbers ("NaN", "+Inf")
become float NaN and infinity, which the conditions can test with `isNaN` and `isInf`.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
from collections.abc import Mapping
from typing import Any

from delivery.analysis import bounded
from delivery.analysis.egress import Egress
from delivery.analysis.expr import Value
from delivery.analysis.judge import Direction, JudgeConfig, Outcome, judge
from delivery.analysis.provider import Unmeasurable, Verdict
from delivery.api.analysis import Direction as ApiDirection
from delivery.api.analysis import Judge
from delivery.api.rollout import AnalysisPhase

TIMEOUT = 10.0
"""Seconds a query may take in all, its answer read in full, before the measurement is an error."""
JUDGE_POINTS = 240
"""At most this many samples a side: the judge's step is the window divided by it, 1s at least."""


async def _result(address: str, api: str, params: Mapping[str, str | int], egress: Egress) -> Any:
    """`data.result` of the answer to a GET of `api` (`/api/v1/query`, say) on Prometheus at `address`."""
    who = f"prometheus at {address}"
    url = address.rstrip("/") + api
    answer = await bounded.request(
        who, "GET", url, TIMEOUT, egress=egress, params=params, follow_redirects=True
    )
    if answer.status != 200:
        raise Unmeasurable(f"{who} refused the query: HTTP {answer.status}: {answer.excerpt()}")
    try:
        return json.loads(answer.body)["data"]["result"]
    except (ValueError, KeyError, TypeError) as error:  # a 200 whose body is not Prometheus' JSON
        raise Unmeasurable(f"{who} answered garbage: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return bounded.excerpt(text[0]) if text else type(error).__name__


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError) as error:
        raise Unmeasurable(f"not a sample value: {bounded.excerpt(repr(text))}") from error


def value_of(result: Any) -> Value:
    """The measurement from the `data.result` of an instant query, by its shape."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        sample = result[1]
        try:
            return float(sample)  # a scalar
        except (TypeError, ValueError):
            return str(sample)  # a string
    if isinstance(result, list) and all(isinstance(series, dict) for series in result):
        if any("values" in series for series in result):
            raise Unmeasurable(
                "the query gives a range vector; use an instant vector (no [range] at the end)"
            )
        return [_number(series["value"][1]) for series in result]
    raise Unmeasurable(f"not a Prometheus query result: {bounded.excerpt(str(result))}")


async def query(address: str, promql: str, *, egress: Egress) -> Value:
    """The value of an instant query."""
    result = await _result(address, "/api/v1/query", {"query": promql}, egress)
    return value_of(result)


def sample_step(start: datetime.datetime, end: datetime.datetime, step: str | None) -> str:
    """The judge's step: as given, or the window divided by JUDGE_POINTS, 1s at least."""
    if step:
        return step
    window = max((end - start).total_seconds(), 1.0)
    return f"{max(1, math.ceil(window / JUDGE_POINTS))}s"


async def samples(
    address: str,
    promql: str,
    start: datetime.datetime,
    end: datetime.datetime,
    step: str,
    *,
    egress: Egress,
) -> list[float]:
    """Every sample of every series of `promql` between `start` and `end`, `step` apart."""
    params: dict[str, str | int] = {"query": promql, "step": step}
    params |= {"start": round(start.timestamp()), "end": round(end.timestamp())}
    result = await _result(address, "/api/v1/query_range", params, egress)
    if not isinstance(result, list) or not all(isinstance(series, dict) for series in result):
        raise Unmeasurable(f"not a Prometheus range result: {bounded.excerpt(str(result))}")
    return [_number(point[1]) for series in result for point in series.get("values") or ()]


_DIRECTIONS = {
    ApiDirection.INCREASE_IS_BAD: Direction.INCREASE,
    ApiDirection.DECREASE_IS_BAD: Direction.DECREASE,
    ApiDirection.EITHER: Direction.EITHER,
}
_PHASES = {
    Outcome.PASS: AnalysisPhase.SUCCESSFUL,
    Outcome.FAIL: AnalysisPhase.FAILED,
    Outcome.INCONCLUSIVE: AnalysisPhase.INCONCLUSIVE,
}


async def compare(
    address: str,
    spec: Judge,
    metric: str,
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    egress: Egress,
) -> Verdict:
    """The judge's verdict on the canary's samples against the stable's since the analysis began.

    Both queries run at once, and both have ended (each within TIMEOUT) when this returns or raises:
    one that fails does not leave the other running unwatched.
    """
    step = sample_step(start, end, spec.step)
    canary, stable = await asyncio.gather(
        samples(address, spec.canary_query, start, end, step, egress=egress),
        samples(address, spec.stable_query, start, end, step, egress=egress),
        return_exceptions=True,
    )
    if isinstance(canary, BaseException):
        raise canary
    if isinstance(stable, BaseException):
        raise stable
    config = JudgeConfig(_DIRECTIONS[spec.direction], float(spec.tolerance), min_samples=spec.min_samples)
    # Off the event loop: the Hodges-Lehmann estimate takes n·m differences, seconds of CPU for the
    # thousands of samples a capped answer may still hold, and the loop renews the Lease.
    verdict = await asyncio.to_thread(judge, canary, stable, config, metric)
    value: dict[str, Value] = {"canary": verdict.canary_count, "stable": verdict.stable_count}
    if verdict.p_value is not None:
        value["pValue"] = round(verdict.p_value, 4)
    if verdict.effect is not None and math.isfinite(verdict.effect):
        value["effect"] = round(verdict.effect, 4)
    return Verdict(_PHASES[verdict.outcome], value, verdict.message)
