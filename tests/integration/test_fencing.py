"""Fencing: a leader whose event loop stalls past the lease duration in the middle of a canary loses
the Lease to the standby, which finishes the release; the apiserver's audit log, where each
replica writes under its own client identity, shows that the old leader wrote nothing after its
fence deadline and that the two never wrote in turns. The old leader's own log shows why: it
refused the write it had queued, and it said it lost the Lease.
"""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from delivery.kube.api import Kube
from delivery.kube.fence import Fence, Fenced
from delivery.kube.kinds import CONFIG_MAP
from delivery.operator import api_client
from delivery.rollout.revision import template_hash
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.rollouts import apply, event_objects, in_shard, replicas_by_revision, rollout, service, wait_for
from tests.waiting import eventually

pytestmark = pytest.mark.faults

SHARD = "fencing"
LEASE_DURATION = 4.0
RENEW_DEADLINE = 3.0
RETRY_PERIOD = 0.5
# The leader's 20th write comes early in the canary (the first release takes about 7). Its loop
# stalls with that write queued, right before the write's fence check, so when it wakes only the
# fence stands between that write and the apiserver. The stall is long enough for the standby to
# wait out the lease duration and lead (about 5 s), and it ends while the standby is still at the
# canary's later steps.
STALLED_WRITE = 20
STALL = 8.0
# Audit timestamps are in microseconds; a write the fence let through just before the deadline
# reaches the apiserver a fraction of a millisecond later.
SLACK = datetime.timedelta(milliseconds=2)
STEPS: list[dict[str, Any]] = []
for weight in (25, 50, 75):
    STEPS += [{"setWeight": weight}, {"pause": {"duration": "3s"}}]
STRATEGY = {
    "canary": {
        "steps": STEPS,
        "canaryService": "web-canary",
        "stableService": "web",
        "scaleDownDelaySeconds": 0,
    }
}
UNINTERRUPTED = (
    ["RolloutUpdated", "RolloutCompleted", "RolloutUpdated"]
    + ["RolloutStepCompleted", "RolloutPaused", "RolloutStepCompleted"] * 3
    + ["RolloutPromoted", "RolloutCompleted"]
)
REFUSED = "not sent: this replica's Lease is not known to be valid"


def replica(sandbox: Sandbox, namespace: str, log: Path, user: str, env: dict[str, str]) -> Controller:
    """A replica whose identity, in the Lease and in the audit log, is `user`."""
    return Controller.of_shard(
        sandbox,
        log,
        SHARD,
        "--leader-elect",
        f"--identity={user}",
        f"--lease-namespace={namespace}",
        f"--lease-duration={LEASE_DURATION}",
        f"--renew-deadline={RENEW_DEADLINE}",
        f"--retry-period={RETRY_PERIOD}",
        namespace=namespace,
        kubeconfig=sandbox.user_kubeconfig(user),
        env=env,
    )


def moment(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp)


def received(event: dict[str, Any]) -> datetime.datetime:
    return moment(event["requestReceivedTimestamp"])


def answered(event: dict[str, Any]) -> datetime.datetime:
    return moment(event["stageTimestamp"])


def writes(events: Iterable[dict[str, Any]], user: str, *, leases: bool) -> list[dict[str, Any]]:
    """`user`'s writes in order of arrival: of its Lease only, or of everything but its Lease."""
    return sorted(
        (
            event
            for event in events
            if event["user"]["username"] == user
            and ((event.get("objectRef") or {}).get("resource") == "leases") == leases
        ),
        key=received,
    )


def test_a_leader_stalled_past_its_lease_writes_nothing_after_its_deadline(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    stall = {"DELIVERY_FAILPOINTS": f"write:{STALLED_WRITE}=stall:{STALL:g}"}
    first = replica(sandbox, namespace, tmp_path / "a.log", "fencing-a", stall)
    second = replica(sandbox, namespace, tmp_path / "b.log", "fencing-b", {})
    web = in_shard(rollout("web", namespace, "web:1", STRATEGY, replicas=4), SHARD)
    try:
        first.start()
        eventually(lambda: "leading with Lease" in first.tail(), timeout=60, what="a leading")
        second.start()
        eventually(lambda: "caches synced" in second.tail(), timeout=60, what="b warm")
        apply(sandbox, service("web", namespace, "web"), service("web-canary", namespace, "web"), web)
        old = wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")["stableRevision"]
        web["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
        apply(sandbox, web)
        new = template_hash(web["spec"]["template"])
        final = wait_for(sandbox, "web", namespace, timeout=120, phase="Healthy", stableRevision=new)

        # (c) the release is the one an uninterrupted controller makes, finished by b
        events = event_objects(sandbox, "web", namespace)
        assert [event["reason"] for event in events] == UNINTERRUPTED
        assert final["transitionCount"] == len(UNINTERRUPTED)
        assert replicas_by_revision(sandbox, "web", namespace) == {old: 0, new: 4}
        reporters = [event["reportingInstance"] for event in events]
        switch = reporters.index("fencing-b")
        assert set(reporters[:switch]) == {"fencing-a"}
        assert set(reporters[switch:]) == {"fencing-b"}
        assert 3 < switch < len(UNINTERRUPTED)  # a took the canary part of the way, b the rest

        # a stalled right before a write, refused that write once it woke, and stepped down
        eventually(lambda: "lost the Lease" in first.tail(), timeout=STALL + 30, what="a stepping down")
        first.stop()  # every write a will ever send is in the audit log now
        log = first.log.read_text()
        assert f"failpoint write:{STALLED_WRITE}=stall at" in log
        assert log.count(REFUSED) >= 1

        audit = [
            event
            for event in sandbox.audit_events()
            if (event.get("objectRef") or {}).get("namespace") == namespace
        ]
        renewals = [
            event
            for event in writes(audit, "fencing-a", leases=True)
            if event["responseStatus"]["code"] == 200
        ]
        # The fence counts from before the renewal's GET, so a's real deadline is a little earlier.
        deadline = received(renewals[-1]) + datetime.timedelta(seconds=RENEW_DEADLINE)
        a_writes = writes(audit, "fencing-a", leases=False)
        b_writes = writes(audit, "fencing-b", leases=False)
        # (a) every write a sent came before its deadline; the one it stalled at was never sent
        late = [event for event in a_writes if received(event) > deadline + SLACK]
        assert late == [], f"a wrote after its deadline {deadline}: {late}"
        assert len(a_writes) == STALLED_WRITE - 1  # the failpoints count refused writes too
        # b took the Lease only once it had gone unrenewed for the lease duration
        taken = next(
            event
            for event in writes(audit, "fencing-b", leases=True)
            if event["responseStatus"]["code"] == 200
        )
        assert received(taken) >= answered(renewals[-1]) + datetime.timedelta(seconds=LEASE_DURATION) - SLACK
        # (b) never in turns: all of a's writes were answered before b sent its first
        assert answered(a_writes[-1]) < received(b_writes[0])
    finally:
        first.stop()
        second.stop()


async def test_a_write_checked_before_a_stall_is_not_sent_after_the_deadline(sandbox: Sandbox) -> None:
    """The hole the body's own check closes: between the first check and the bytes' leaving, aiohttp
    awaits (a thread-pool hop, a separate task for the body). A loop stalled there used to send, a
    second after the deadline, a write checked before it; now the body refuses to be written."""
    user = "fencing-hole"
    client = await api_client(str(sandbox.user_kubeconfig(user)))
    fence = Fence()
    kube = Kube(client).guarded(fence, None)
    name = f"hole-{uuid.uuid4().hex[:8]}"
    try:
        fence.extend(time.monotonic() + 5)
        await kube.create(CONFIG_MAP, "default", config_map(f"{name}-warm"))  # a pooled connection
        fence.revoke()
        fence.extend(time.monotonic() + 0.2)

        async def stall() -> None:  # another reconcile's CPU-bound step, as a failpoint's stall
            time.sleep(1.0)

        late = asyncio.create_task(kube.create(CONFIG_MAP, "default", config_map(name)))
        stalling = asyncio.create_task(stall())
        with pytest.raises(Fenced):
            await late
        await stalling
    finally:
        await client.close()

    def written() -> set[str | None]:
        return {
            (e.get("objectRef") or {}).get("name") for e in writes(sandbox.audit_events(), user, leases=False)
        }

    eventually(lambda: f"{name}-warm" in written() or None, timeout=10, what="the warm-up write audited")
    assert name not in written()


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}
