"""An app's HTTP metrics as examples/rollout-canary-analysis.yaml reads them, served on loopback for the
sandbox's Prometheus: what a real app and its scrape would give, since kwok's pods serve nothing.

Per revision (the label `revision`, a pod-template-hash): `http_requests_total{code}` at a fixed
rate with no errors, and the histogram `http_request_duration_seconds` of a healthy latency that
wobbles a little from one scrape to the next, so the judge compares two like distributions. The
scrape target carries `namespace` and `service`, as the example says a cluster's scrape adds them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from sandbox.cluster import Sandbox, free_port

REQUESTS_PER_SECOND = 20.0
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
MEDIAN_LATENCY = 0.08


@dataclass
class Served:
    requests: float = 0.0
    below: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))
    seconds: float = 0.0
    since: float = field(default_factory=time.monotonic)


class HttpTraffic:
    """The revisions' counters, advanced at each scrape (prometheus-client calls `collect`)."""

    def __init__(self, seed: int = 11) -> None:
        self._lock = threading.Lock()
        self._revisions: dict[str, Served] = {}
        self._random = random.Random(seed)

    def serve(self, revision: str) -> None:
        with self._lock:
            self._revisions.setdefault(revision, Served())

    def _advance(self, state: Served) -> None:
        now = time.monotonic()
        served = REQUESTS_PER_SECOND * (now - state.since)
        median = MEDIAN_LATENCY * self._random.uniform(0.9, 1.1)
        state.requests += served
        state.seconds += served * median
        for index, bound in enumerate(BUCKETS):
            state.below[index] += served / (1 + (median / bound) ** 4)  # a log-logistic spread
        state.since = now

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("http_requests", "Requests served", labels=["revision", "code"])
        latency = HistogramMetricFamily(
            "http_request_duration_seconds", "Time to serve a request", labels=["revision"]
        )
        with self._lock:
            for revision, state in self._revisions.items():
                self._advance(state)
                requests.add_metric([revision, "200"], state.requests)
                buckets = [(str(bound), count) for bound, count in zip(BUCKETS, state.below, strict=True)]
                latency.add_metric([revision], [*buckets, ("+Inf", state.requests)], state.seconds)
        yield from (requests, latency)


@dataclass
class App:
    traffic: HttpTraffic
    job: str
    server: Any
    thread: threading.Thread

    def stop(self, sandbox: Sandbox) -> None:
        assert sandbox.prometheus is not None
        sandbox.prometheus.remove_target(self.job)
        self.server.shutdown()
        self.thread.join()


def serve(sandbox: Sandbox, namespace: str, service: str) -> App:
    """Export a fresh HttpTraffic, scraped as the app `service` of `namespace`."""
    traffic = HttpTraffic()
    registry = CollectorRegistry()
    registry.register(traffic)  # a Collector by protocol: it has collect()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    job = f"{namespace}-{service}"
    assert sandbox.prometheus is not None
    sandbox.prometheus.add_target(job, f"127.0.0.1:{port}", {"namespace": namespace, "service": service})
    return App(traffic, job, server, thread)
