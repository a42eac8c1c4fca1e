"""Failover: from SIGKILL of the active replica to the next transition written by the new one.

Two replicas run with leader election on the sandbox. Each trial kills the leader and, at the
same instant, changes the Rollout's template, so a transition (RolloutUpdated) is due at once and
only a new leader can write it. Measured on watches of the Lease and the Rollout:

- lease taken: SIGKILL to the Lease naming the standby;
- next transition: SIGKILL to the Rollout's status carrying the new transition.

The killed replica is restarted as the next standby (and waited for until its caches are synced)
before the next trial, so leaders alternate. Both depend mostly on --lease-duration: a standby
may take the Lease only once it has seen it unrenewed for that long.

Run: .venv/bin/python -m benchmarks.failover [--trials 5] [--lease-duration 15 --renew-deadline 10
     --retry-period 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from benchmarks.record import record
from delivery.ops.leader import lease_name
from sandbox.cluster import Sandbox
from sandbox.processes import Managed, log_tail
from tests.rollouts import apply, rollout

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "default"
NAME = "web"
STRATEGY = {"canary": {"steps": [{"setWeight": 50}], "scaleDownDelaySeconds": 0}}


class Seen:
    """The latest Lease holder and Rollout transition count, with when each was first seen."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.holder: tuple[str, float] = ("", 0.0)
        self.transitions: tuple[int, float] = (0, 0.0)
        self.stopping = False

    def _lease(self) -> None:
        coordination = client.CoordinationV1Api(self.api)
        while not self.stopping:
            for event in watch.Watch().stream(
                coordination.list_namespaced_lease, NAMESPACE, timeout_seconds=5
            ):
                spec = event["raw_object"]["spec"]
                if event["raw_object"]["metadata"]["name"] == lease_name(None):
                    holder = spec.get("holderIdentity") or ""
                    if holder != self.holder[0]:
                        self.holder = (holder, time.monotonic())

    def _rollout(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        while not self.stopping:
            for event in watch.Watch().stream(
                custom.list_namespaced_custom_object,
                "delivery.luojilab.com",
                "v1alpha1",
                NAMESPACE,
                "rollouts",
                timeout_seconds=5,
            ):
                count = (event["raw_object"].get("status") or {}).get("transitionCount", 0)
                if count > self.transitions[0]:
                    self.transitions = (count, time.monotonic())

    def start(self) -> None:
        threading.Thread(target=self._lease, daemon=True).start()
        threading.Thread(target=self._rollout, daemon=True).start()


def wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"not {what} within {timeout:.0f}s")


def healthy(sandbox: Sandbox, image: str) -> bool:
    current = json.loads(sandbox.kubectl_run("get", "rollout", NAME, "-n", NAMESPACE, "-o", "json"))
    status = current.get("status") or {}
    return (
        status.get("phase") == "Healthy"
        and status.get("stableRevision") == status.get("canaryRevision")
        and status.get("observedGeneration") == current["metadata"]["generation"]
        and current["spec"]["template"]["spec"]["containers"][0]["image"] == image
    )


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(samples), 2),
        "max": round(max(samples), 2),
        "min": round(min(samples), 2),
    }


@dataclass(frozen=True)
class LeaseTimings:
    """`delivery run`'s leader election timings; the defaults are its own (and the chart's)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def args(self) -> list[str]:
        return [
            f"--lease-duration={self.lease_duration}",
            f"--renew-deadline={self.renew_deadline}",
            f"--retry-period={self.retry_period}",
        ]


def start_replica(sandbox: Sandbox, identity: str, log_name: str, *args: str) -> Managed:
    """`delivery run` as one replica under leader election, once its caches are synced. Each
    process logs to its own `log_name`, so a restarted replica's "synced" is its own."""
    argv = [sys.executable, "-m", "delivery.cli.main", "run", "--webhook=off", "--leader-elect"]
    replica = sandbox.spawn_extra(log_name, [*argv, *args, f"--identity={identity}"])
    wait(lambda: "caches synced" in log_tail(replica.log, 200), 60, f"{identity} synced")
    return replica


def prepare(sandbox: Sandbox) -> None:
    """The CRDs installed and established."""
    sandbox.kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
    sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def measure(trials: int, timings: LeaseTimings) -> dict[str, Any]:
    """`trials` failovers on a sandbox of their own; the figures."""
    taken: list[float] = []
    transitioned: list[float] = []
    with tempfile.TemporaryDirectory() as scratch, Sandbox(root=Path(scratch) / "sandbox") as sandbox:
        prepare(sandbox)
        starts = iter(range(1_000_000))

        def start(identity: str) -> Managed:
            return start_replica(
                sandbox,
                identity,
                f"{identity}.{next(starts)}",
                f"--kubeconfig={sandbox.kubeconfig}",
                f"--lease-namespace={NAMESPACE}",
                *timings.args(),
            )

        api = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
        seen = Seen(api)
        seen.start()
        replicas = {"replica-0": start("replica-0")}
        wait(lambda: seen.holder[0] == "replica-0", 60, "replica-0 leading")
        replicas["replica-1"] = start("replica-1")
        apply(sandbox, rollout(NAME, NAMESPACE, "app:0", STRATEGY, replicas=2))
        wait(lambda: healthy(sandbox, "app:0"), 120, "the first release Healthy")
        for trial in range(1, trials + 1):
            leader = seen.holder[0]
            standby = next(name for name in replicas if name != leader)
            before = seen.transitions[0]
            killed = time.monotonic()
            replicas[leader].kill()
            apply(sandbox, rollout(NAME, NAMESPACE, f"app:{trial}", STRATEGY, replicas=2))
            wait(lambda: seen.holder[0] == standby, 120, f"{standby} leading")  # noqa: B023
            wait(lambda: seen.transitions[0] > before, 120, "the next transition")  # noqa: B023
            taken.append(seen.holder[1] - killed)
            transitioned.append(seen.transitions[1] - killed)
            print(
                f"trial {trial}: Lease taken after {taken[-1]:.2f}s, next transition after "
                f"{transitioned[-1]:.2f}s",
                flush=True,
            )
            wait(lambda: healthy(sandbox, f"app:{trial}"), 120, f"release {trial} Healthy")  # noqa: B023
            replicas[leader] = start(leader)  # the next standby
        seen.stopping = True
        for replica in replicas.values():
            replica.stop()
    return {
        "trials": trials,
        "lease_duration_seconds": timings.lease_duration,
        "renew_deadline_seconds": timings.renew_deadline,
        "retry_period_seconds": timings.retry_period,
        "lease_taken_seconds": summary(taken),
        "next_transition_seconds": summary(transitioned),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = LeaseTimings()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--lease-duration", type=float, default=defaults.lease_duration)
    parser.add_argument("--renew-deadline", type=float, default=defaults.renew_deadline)
    parser.add_argument("--retry-period", type=float, default=defaults.retry_period)
    args = parser.parse_args()
    figures = measure(args.trials, LeaseTimings(args.lease_duration, args.renew_deadline, args.retry_period))
    print(json.dumps(figures, indent=2))
    record("failover", figures)


if __name__ == "__main__":
    main()
