"""Simulated traffic for the demo's pods, which kwok runs as nothing at all.

The process plays the demo service's users and pods: every tick it reads how the Rollout splits
traffic (the weights in its status, else ready pods per revision) and counts requests, errors and
latencies per revision, served on /metrics for Prometheus to scrape. A revision's behaviour comes
from its image tag: a tag containing `bad` answers 30% of requests with 500s, slowly; any other
answers well. The analysis then sees what a real canary would show.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from delivery.kube.api import Kube, Object
from delivery.kube.kinds import REPLICA_SET, ROLLOUT
from delivery.operator import api_client
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL

log = logging.getLogger(__name__)

TICK = 0.5  # seconds


@dataclass(frozen=True)
class Behaviour:
    error_ratio: float
    latency_seconds: float


GOOD = Behaviour(error_ratio=0.005, latency_seconds=0.05)
BAD = Behaviour(error_ratio=0.30, latency_seconds=0.40)


def behaviour(image: str) -> Behaviour:
    tag = image.rpartition(":")[2]
    return BAD if "bad" in tag else GOOD


def shares(status: dict[str, Any], ready: dict[str, int]) -> dict[str, float]:
    """The fraction of requests each revision answers."""
    stable, canary = status.get("stableRevision"), status.get("canaryRevision")
    weights = status.get("weights")
    if weights and stable in ready and canary in ready and canary != stable:
        canary_share = weights.get("canary", 0) / 100
        return {stable: 1 - canary_share, canary: canary_share}
    serving = {revision: count for revision, count in ready.items() if count > 0}
    total = sum(serving.values())
    return {revision: count / total for revision, count in serving.items()} if total else {}


class Traffic:
    def __init__(self, kube: Kube, namespace: str, name: str, rps: float, seed: int = 0) -> None:
        self.kube, self.namespace, self.name, self.rps = kube, namespace, name, rps
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "demo_requests",
            "Requests answered, by revision and status code.",
            ["revision", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "demo_request_duration_seconds",
            "Request latency by revision.",
            ["revision"],
            registry=self.registry,
            buckets=(0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6),
        )
        self.random = random.Random(seed)  # noqa: S311 - simulated traffic, not security
        self.owed: dict[str, float] = {}

    async def observe(self) -> tuple[dict[str, Any], dict[str, Object]]:
        rollout = await self.kube.get(ROLLOUT, self.namespace, self.name)
        replicasets = await self.kube.list(REPLICA_SET, self.namespace, f"{ROLLOUT_LABEL}={self.name}")
        by_revision = {rs["metadata"]["labels"][HASH_LABEL]: rs for rs in replicasets}
        return ((rollout or {}).get("status") or {}), by_revision

    def answer(self, revision: str, count: int, how: Behaviour) -> None:
        for _ in range(count):
            failed = self.random.random() < how.error_ratio
            self.requests.labels(revision, "500" if failed else "200").inc()
            self.latency.labels(revision).observe(self.random.expovariate(1 / how.latency_seconds))

    async def tick(self) -> None:
        status, by_revision = await self.observe()
        ready = {
            revision: (rs.get("status") or {}).get("readyReplicas", 0) for revision, rs in by_revision.items()
        }
        for revision, share in shares(status, ready).items():
            self.owed[revision] = self.owed.get(revision, 0.0) + self.rps * TICK * share
            count = int(self.owed[revision])
            self.owed[revision] -= count
            image = by_revision[revision]["spec"]["template"]["spec"]["containers"][0]["image"]
            self.answer(revision, count, behaviour(image))

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # the apiserver restarting must not end the simulation
                log.exception("tick failed")
            await asyncio.sleep(TICK)


async def serve(args: argparse.Namespace) -> None:
    client = await api_client(args.kubeconfig)
    traffic = Traffic(Kube(client, field_manager="demo-traffic"), args.namespace, args.rollout, args.rps)
    start_http_server(args.port, addr="127.0.0.1", registry=traffic.registry)
    await traffic.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--rollout", default="demo")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rps", type=float, default=40.0)
    logging.basicConfig(level=logging.INFO)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
