"""Recovery from faults of the control plane and of the controller, timed on the sandbox.

The controller runs as the chart deploys it: two replicas electing a leader with the default Lease
timings (15/10/2), both under one client identity so that the apiserver's audit log times their
writes (tests/outages.py).

- apiserver SIGKILL for 20 s in the middle of a canary, timed so that a 15 s pause ends half-way
  through the outage: from the apiserver answering /readyz again to the next transition's status
  write. 20 s outlasts the leader's renew deadline: it steps down, and a replica must take the
  Lease again once the apiserver answers before anything is written.
- etcd SIGKILL for 20 s, the same. Also timed from the apiserver answering every write it held
  while etcd was away (the controller's own share), since it answers some only seconds after its
  /readyz says ready.
- leader SIGKILL (benchmarks.failover, on a sandbox of its own): from SIGKILL to the next
  transition written by the standby, with the default Lease timings and short ones (4/3/0.5).
- a relist after `410 Gone` with 100 Rollouts: each paused canary gets the promote annotation in
  etcd while the apiserver cannot see it, and its event is compacted away (sandbox.lost_events),
  so every watch resumes into 410 and relists. From the leader's relist of the Rollouts to each
  promotion's status write, p50 and the last of the 100.

Run: .venv/bin/python -m benchmarks.faults [--trials 5] [--rollouts 100]   (about 9 minutes)
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config

from benchmarks.failover import LeaseTimings, measure, prepare, start_replica, summary
from benchmarks.record import record
from delivery.ops.leader import lease_name
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from sandbox.processes import Managed
from tests import namespaces
from tests.outages import (
    Fault,
    faults,
    first_status_writes,
    now,
    pause_ends_during,
    resume_refused,
    timed_canary,
)
from tests.rollouts import PROMOTE, apply, get, rollout, wait_for
from tests.waiting import eventually

USER = "delivery-faults"
NAME = "web"
PAUSE = 15.0
OUTAGE = 20.0
SHORT = LeaseTimings(lease_duration=4.0, renew_deadline=3.0, retry_period=0.5)
GROUP, VERSION = "delivery.luojilab.com", "v1alpha1"


def logged(
    logs: Iterable[Path], after: datetime.datetime, *starts: str
) -> list[tuple[datetime.datetime, str]]:
    """The messages of the replicas' JSON logs after `after` that start with one of `starts`:
    (time, message), in order. Lines that are not JSON (a warning printed to stderr) are skipped."""
    found = [
        (datetime.datetime.fromisoformat(entry["time"]), entry["message"])
        for log in logs
        for entry in (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
        if entry["message"].startswith(starts)
    ]
    return sorted(line for line in found if line[0] > after)


def outage_trials(
    sandbox: Sandbox, api: client.ApiClient, fault: Fault, trials: int, logs: list[Path]
) -> dict[str, Any]:
    """`trials` releases of one canary, each with `fault` down for OUTAGE seconds as its pause
    ends; also when a replica led again (the outage outlasts the renew deadline), from /readyz."""
    namespace = namespaces.create(api, fault.name)
    strategy = timed_canary(PAUSE)
    apply(sandbox, rollout(NAME, namespace, "app:0", strategy, replicas=2))
    wait_for(sandbox, NAME, namespace, timeout=120, phase="Healthy")
    after_readyz: list[float] = []
    own: list[float] = []
    led: list[float] = []
    for trial in range(1, trials + 1):
        release = rollout(NAME, namespace, f"app:{trial}", strategy, replicas=2)
        apply(sandbox, release)
        recovery = pause_ends_during(
            sandbox, fault, NAME, namespace, USER, pause=PAUSE, outage=OUTAGE, timeout=120
        )
        after_readyz.append(recovery.after_readyz)
        own.append(recovery.delay)
        leading = logged(logs, recovery.killed, "leading with Lease")
        if leading:
            led.append((leading[0][0] - recovery.answered).total_seconds())
        again = f"{led[-1]:.2f}s after /readyz" if leading else "never (the leader kept its Lease)"
        print(
            f"{fault.name} trial {trial}: transition written {recovery.after_readyz:.2f}s after /readyz, "
            f"{recovery.delay:.2f}s after the apiserver answered every write it held; a replica led "
            f"again {again}",
            flush=True,
        )
        revision = template_hash(release["spec"]["template"])
        wait_for(sandbox, NAME, namespace, timeout=120, phase="Healthy", stableRevision=revision)
    namespaces.delete(api, namespace)
    return {
        "trials": trials,
        "outage_seconds": OUTAGE,
        "after_readyz_seconds": summary(after_readyz),
        "own_share_seconds": summary(own),
        "led_again_after_readyz_seconds": summary(led) if led else None,
    }


def wait_all(
    custom: client.CustomObjectsApi, namespace: str, count: int, done: Callable[[dict[str, Any]], bool]
) -> None:
    def finished() -> bool:
        listing = cast(
            "dict[str, Any]", custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts")
        )
        return sum(1 for item in listing["items"] if done(item.get("status") or {})) == count

    eventually(finished, timeout=600, interval=0.5, what=f"{count} rollouts there")


def relist_after_gone(
    sandbox: Sandbox, api: client.ApiClient, replicas: dict[str, Managed], count: int
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    namespace = namespaces.create(api, "gone")
    strategy = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": 0}}
    names = [f"ro-{index:03d}" for index in range(count)]
    apply(sandbox, *(rollout(name, namespace, "app:1", strategy, replicas=1) for name in names))
    wait_all(custom, namespace, count, lambda status: status.get("phase") == "Healthy")
    apply(sandbox, *(rollout(name, namespace, "app:2", strategy, replicas=1) for name in names))
    wait_all(
        custom,
        namespace,
        count,
        lambda status: status.get("phase") == "Paused" and status.get("currentStepIndex") == 1,
    )
    leader = replicas[get(sandbox, "lease", lease_name(None), "default")["spec"]["holderIdentity"]]
    started = now()
    with sandbox.lost_events() as etcd:
        for name in names:
            key = f"/registry/{GROUP}/rollouts/{namespace}/{name}"
            stored = json.loads(etcd.get(key) or "{}")
            stored["metadata"].setdefault("annotations", {})[PROMOTE] = "step"
            etcd.put(key, json.dumps(stored))
    answered = now()

    def promoted() -> dict[str, datetime.datetime] | None:
        found = first_status_writes(sandbox.audit_events(), USER, namespace, after=started)
        return found if len(found) == count else None

    written = eventually(promoted, timeout=300, interval=0.5, what=f"all {count} promotions written")
    # The last refusal is the one the listing that went through followed.
    relist, cause = logged([leader.log], started, *resume_refused("rollouts"))[-1]
    delays = [(written[name] - relist).total_seconds() for name in names]
    return {
        "rollouts": count,
        "relist_cause": cause,
        "answered_to_relist_seconds": round((relist - answered).total_seconds(), 2),
        "relist_to_promotion_seconds": {
            "p50": round(statistics.median(delays), 2),
            "all": round(max(delays), 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=5, help="trials of each fault")
    parser.add_argument("--rollouts", type=int, default=100)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch, Sandbox(root=Path(scratch) / "sandbox") as sandbox:
        prepare(sandbox)
        kubeconfig = sandbox.user_kubeconfig(USER)
        replicas = {
            identity: start_replica(
                sandbox, identity, identity, f"--kubeconfig={kubeconfig}", "--log-format=json"
            )
            for identity in ("replica-a", "replica-b")
        }
        api = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
        logs = [replica.log for replica in replicas.values()]
        for fault in faults(sandbox).values():
            figures[f"{fault.name}_sigkill"] = outage_trials(sandbox, api, fault, args.trials, logs)
            print(json.dumps(figures[f"{fault.name}_sigkill"]), flush=True)
        figures["relist_after_410"] = relist_after_gone(sandbox, api, replicas, args.rollouts)
        print(json.dumps(figures["relist_after_410"]), flush=True)
        for replica in replicas.values():
            replica.stop()
    for label, timings in (("default", LeaseTimings()), ("short", SHORT)):
        figures[f"leader_sigkill_{label}"] = measure(args.trials, timings)
        print(json.dumps(figures[f"leader_sigkill_{label}"]), flush=True)
    print(json.dumps(figures, indent=2))
    record("faults", figures)


if __name__ == "__main__":
    main()
