"""Control-plane outages timed against a Rollout's pause, and how soon the controller writes what
fell due while it could not: shared by tests/integration/test_recovery.py and benchmarks/faults.py.

Writes are timed by the apiserver's audit log (when the apiserver answered them), not by when a
poll happened to see them, so a figure is the controller's and not the poll's. The log also
shows the writes the apiserver held: while etcd is away it keeps a write waiting rather than
refusing it, and answers it only once its own connection to etcd for that kind of object is back,
which can be seconds after its /readyz says ready (each kind has its own, reconnecting on its
own back-off).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.cluster import Sandbox
from tests.rollouts import wait_for
from tests.waiting import eventually

PAUSE_STEP = 1  # the canaries here are [setWeight, pause, ...]: the timed pause is step 1


def timed_canary(pause: float) -> dict[str, Any]:
    """A canary strategy whose step 1 is a pause of `pause` seconds: the step after it is the
    transition that falls due when the pause ends."""
    steps = [{"setWeight": 50}, {"pause": {"duration": f"{pause:g}s"}}, {"setWeight": 75}]
    return {"canary": {"steps": steps, "scaleDownDelaySeconds": 0}}


@dataclass(frozen=True)
class Fault:
    """A control-plane component to crash: `kill`, then `start`, which returns when the apiserver
    answers /readyz again."""

    name: str
    kill: Callable[[], None]
    start: Callable[[], datetime.datetime]


def faults(sandbox: Sandbox) -> dict[str, Fault]:
    return {
        "apiserver": Fault("apiserver", sandbox.kill_apiserver, sandbox.start_apiserver),
        "etcd": Fault("etcd", sandbox.kill_etcd, sandbox.start_etcd),
    }


@dataclass(frozen=True)
class Recovery:
    killed: datetime.datetime
    due: datetime.datetime  # when the pause ended, in the middle of the outage
    answered: datetime.datetime  # the apiserver answering /readyz again
    held_until: datetime.datetime  # it had answered every write of the controller's sent before that
    written: datetime.datetime  # the next transition's status write, answered

    @property
    def after_readyz(self) -> float:
        """Seconds from the apiserver answering /readyz again to the transition written; negative
        when written first (an apiserver started again serves before /readyz says so)."""
        return (self.written - self.answered).total_seconds()

    @property
    def delay(self) -> float:
        """The controller's own share: seconds from the apiserver answering again, /readyz and
        every write it held, to the transition written."""
        return (self.written - max(self.answered, self.held_until)).total_seconds()


def pause_ends_during(
    sandbox: Sandbox,
    fault: Fault,
    name: str,
    namespace: str,
    user: str,
    *,
    pause: float,
    outage: float,
    timeout: float = 60,
) -> Recovery:
    """Once Rollout `name` is at its timed pause (`timed_canary(pause)`), crash `fault` for
    `outage` seconds so that the pause ends half-way through, start it again, and wait for the
    next transition's status write by `user` (the controller's identity in the audit log)."""
    status = wait_for(sandbox, name, namespace, phase="Paused", currentStepIndex=PAUSE_STEP)
    # Pauses count from pauseStartTime (to the microsecond): that is when the controller acts.
    due = datetime.datetime.fromisoformat(status["pauseStartTime"]) + datetime.timedelta(seconds=pause)
    killed = due - datetime.timedelta(seconds=outage / 2)
    ahead = (killed - now()).total_seconds()
    if ahead < 0:
        raise ValueError(f"a pause of {pause:g}s ends too soon for an outage of {outage:g}s around its end")
    time.sleep(ahead)
    fault.kill()
    try:
        time.sleep(outage)
    finally:
        answered = fault.start()
    written = eventually(
        lambda: first_status_writes(sandbox.audit_events(), user, namespace, after=killed).get(name),
        timeout=timeout,
        what=f"the transition after {name}'s pause written",
    )
    held = [
        answered_at(event)
        for event in sandbox.audit_events()
        if event["user"]["username"] == user and killed < received_at(event) < answered
    ]
    return Recovery(killed, due, answered, max(held, default=answered), written)


def resume_refused(plural: str) -> tuple[str, str]:
    """What the controller logs when its informer of `plural` (in all namespaces) cannot resume a
    watch the apiserver ended to rebuild its cache from a compacted etcd (`Sandbox.lost_events`):
    410 Gone, or 429 while the cache is still being rebuilt. Either way it lists again, and the
    listing is diffed with what it knew."""
    informer = f"{plural} in all namespaces"
    return (
        f"{informer}: the watched version is gone (410)",
        f"{informer}: 429 TooManyRequests: storage is (re)initializing",
    )


def first_status_writes(
    audit: Iterable[dict[str, Any]], user: str, namespace: str, *, after: datetime.datetime
) -> dict[str, datetime.datetime]:
    """When `user`'s first status write of each Rollout of `namespace` answered after `after` was
    answered: one status write records one transition."""
    first: dict[str, datetime.datetime] = {}
    for event in audit:
        where = event.get("objectRef") or {}  # non-resource requests (discovery) have none
        answered = answered_at(event)
        if (
            event["user"]["username"] == user
            and where.get("resource") == "rollouts"
            and where.get("subresource") == "status"
            and where.get("namespace") == namespace
            and event.get("responseStatus", {}).get("code", 0) < 300
            and answered > after
        ):
            first.setdefault(where["name"], answered)
    return first


def received_at(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(event["requestReceivedTimestamp"])


def answered_at(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(event["stageTimestamp"])


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
