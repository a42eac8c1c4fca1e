"""A loopback exporter of an app's traffic per revision, whose error rate and latency the test sets.

It is a real HTTP server (prometheus-client) that the sandbox's real Prometheus scrapes every
second. Counters grow with time at a fixed request rate, so `rate()` over a few seconds gives the
error ratio the test chose; the latency gauge is drawn afresh at each scrape around the chosen mean,
so the judge has a distribution to compare.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sandbox.cluster import Sandbox, free_port
from tests.waiting import eventually

REQUESTS_PER_SECOND = 50.0

ERROR_RATE_QUERY = (
    'sum(rate(app_errors_total{job="{{args.job}}",revision="{{args.canary-hash}}"}[5s]))'
    ' / sum(rate(app_requests_total{job="{{args.job}}",revision="{{args.canary-hash}}"}[5s]))'
)
LATENCY_QUERY = 'app_latency_seconds{job="{{args.job}}",revision="{{args.%s}}"}'


@dataclass
class Revision:
    error_ratio: float = 0.0
    latency: float = 0.1
    requests: float = 0.0
    errors: float = 0.0
    since: float = field(default_factory=time.monotonic)


class Traffic:
    """The exporter's state and its collector (prometheus-client calls `collect` at each scrape)."""

    def __init__(self, seed: int = 7) -> None:
        self._lock = threading.Lock()
        self._revisions: dict[str, Revision] = {}
        self._random = random.Random(seed)

    def set(self, revision: str, *, error_ratio: float | None = None, latency: float | None = None) -> None:
        with self._lock:
            state = self._advance(revision)
            if error_ratio is not None:
                state.error_ratio = error_ratio
            if latency is not None:
                state.latency = latency

    def _advance(self, revision: str) -> Revision:
        state = self._revisions.setdefault(revision, Revision())
        now = time.monotonic()
        served = REQUESTS_PER_SECOND * (now - state.since)
        state.requests += served
        state.errors += served * state.error_ratio
        state.since = now
        return state

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("app_requests", "Requests served", labels=["revision"])
        errors = CounterMetricFamily("app_errors", "Requests that failed", labels=["revision"])
        latency = GaugeMetricFamily("app_latency_seconds", "Latency of the last second", labels=["revision"])
        with self._lock:
            for revision in list(self._revisions):
                state = self._advance(revision)
                requests.add_metric([revision], state.requests)
                errors.add_metric([revision], state.errors)
                latency.add_metric(
                    [revision], max(0.0, self._random.gauss(state.latency, state.latency * 0.1))
                )
        yield from (requests, errors, latency)


@dataclass
class Exporter:
    traffic: Traffic
    job: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()


def export(sandbox: Sandbox, job: str) -> Exporter:
    """Serve a fresh Traffic on loopback and have the sandbox's Prometheus scrape it as `job`."""
    traffic = Traffic()
    registry = CollectorRegistry()
    registry.register(traffic)  # a Collector by protocol: it has collect()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    assert sandbox.prometheus is not None
    sandbox.prometheus.add_target(job, f"127.0.0.1:{port}")
    return Exporter(traffic, job, server, thread)


def wait_scraped(sandbox: Sandbox, job: str, revision: str, samples: int = 3, timeout: float = 60) -> None:
    """Until Prometheus holds `samples` scrapes of `revision`'s requests in the error-rate query's
    window, so a measurement taken at once has a value: on a loaded machine the first scrapes of a
    new series can come late, and an empty result is an error measurement the test did not mean."""
    query = f'count_over_time(app_requests_total{{job="{job}",revision="{revision}"}}[5s])'

    def enough() -> bool:
        answer = httpx.get(f"{sandbox.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
        result = answer.json()["data"]["result"]
        return bool(result) and float(result[0]["value"][1]) >= samples

    eventually(enough, timeout=timeout, what=f"{samples} scrapes of revision {revision} in Prometheus")
