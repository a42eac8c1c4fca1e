"""Fast recovery from the control plane's own failures. A canary's pause that ends while the
apiserver, or etcd, is down moves on within 5 s of the apiserver answering again: its /readyz,
and, after etcd, the writes it held meanwhile (the controller's write was sent on time and waits
inside the apiserver until its own connection to etcd for ReplicaSets is back, seconds after
/readyz at times; see tests/outages.py). After a `410 Gone` (etcd compacted past every version
the controller's watches held, so their events are lost for good; or a 429 if the controller asks
while the apiserver is still rebuilding its cache) the relist shows what went meanwhile, and it
is put back.

The controller under test is one of its own shard with its own identity, so the audit log times
its writes. The session's controller is asked for too: it and the session's fixtures live through
the same outages, which is what lets this file share a session with every other test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.outages import PAUSE_STEP, faults, pause_ends_during, resume_refused, timed_canary
from tests.rollouts import apply, events, get, in_shard, replicas_by_revision, rollout, wait_for
from tests.waiting import eventually

pytestmark = pytest.mark.faults

SHARD = "recovery"
USER = "delivery-recovery"  # the controller's name in the audit log
PAUSE = 15.0
OUTAGE = 10.0  # around the pause's end: 7.5 s before it to 2.5 s after
BUDGET = 5.0  # seconds from the apiserver answering again to the transition written
UNINTERRUPTED = [
    "RolloutUpdated",
    "RolloutCompleted",
    "RolloutUpdated",
    "RolloutStepCompleted",
    "RolloutPaused",
    "RolloutStepCompleted",  # the pause ended: the transition timed here
    "RolloutStepCompleted",
    "RolloutPromoted",
    "RolloutCompleted",
]


@pytest.fixture(scope="module")
def recovering(
    sandbox: Sandbox, crds: None, controller: Controller, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    log = tmp_path_factory.mktemp("recovery") / "delivery.log"
    running = Controller.of_shard(sandbox, log, SHARD, kubeconfig=sandbox.user_kubeconfig(USER))
    running.start()
    eventually(lambda: "caches synced" in running.tail() or None, timeout=60, what="the caches synced")
    yield running
    running.stop()


@pytest.mark.usefixtures("recovering")
@pytest.mark.parametrize("fault", ["apiserver", "etcd"])
def test_a_pause_that_ends_in_an_outage_moves_on_soon_after_the_apiserver_answers(
    sandbox: Sandbox, namespace: str, fault: str
) -> None:
    strategy = timed_canary(PAUSE)
    apply(sandbox, in_shard(rollout("web", namespace, "web:1", strategy, replicas=2), SHARD))
    wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")
    apply(sandbox, in_shard(rollout("web", namespace, "web:2", strategy, replicas=2), SHARD))

    recovery = pause_ends_during(
        sandbox, faults(sandbox)[fault], "web", namespace, USER, pause=PAUSE, outage=OUTAGE
    )

    assert recovery.delay <= BUDGET, recovery
    final = wait_for(sandbox, "web", namespace, timeout=60, phase="Healthy")
    assert final["currentStepIndex"] > PAUSE_STEP
    assert [reason for reason, _ in events(sandbox, "web", namespace)] == UNINTERRUPTED


def test_a_replicaset_deleted_where_only_a_relist_after_a_410_shows_it_is_created_again(
    sandbox: Sandbox, namespace: str, recovering: Controller
) -> None:
    strategy = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": 0}}
    apply(sandbox, in_shard(rollout("web", namespace, "web:1", strategy, replicas=2), SHARD))
    wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")
    apply(sandbox, in_shard(rollout("web", namespace, "web:2", strategy, replicas=2), SHARD))
    canary = wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)["canaryRevision"]
    paused = replicas_by_revision(sandbox, "web", namespace)
    name = f"web-{canary}"
    before: str = get(sandbox, "rs", name, namespace)["metadata"]["uid"]
    seen = len(recovering.log.read_text())

    with sandbox.lost_events() as etcd:
        assert etcd.delete(f"/registry/replicasets/{namespace}/{name}") == 1

    def created_again() -> bool:
        uid: str = get(sandbox, "rs", name, namespace)["metadata"]["uid"]
        return uid != before

    eventually(created_again, timeout=30, what="the canary ReplicaSet created again")
    eventually(
        lambda: replicas_by_revision(sandbox, "web", namespace) == paused,
        timeout=30,
        what="the canary at its size again",
    )
    relisted = recovering.log.read_text()[seen:]
    assert any(refusal in relisted for refusal in resume_refused("replicasets"))
    assert wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1)["canaryRevision"] == canary
