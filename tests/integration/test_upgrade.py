"""Clusters are upgraded under running releases: a canary paused on Kubernetes 1.36 goes on to
completion once the control plane is 1.37.

A sandbox of its own (the session's runs the default release): the apiserver is stopped and the
newer one started on the same etcd and data, then the controller manager and the scheduler are
replaced (`Sandbox.upgrade`); the controller keeps running throughout, as it would in a cluster,
its watches broken by the apiserver's restart and resumed on the newer one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.cluster import Sandbox
from sandbox.versions import NEWEST, UPGRADE_FROM
from tests.controller import Controller
from tests.integration.test_rollout_canary import release
from tests.rollouts import PROMOTE, replicas_by_revision, wait_for
from tests.waiting import eventually

NAMESPACE = "upgraded"


@pytest.fixture
def old_cluster(tmp_path: Path, repo_root: Path) -> Iterator[Sandbox]:
    with Sandbox(root=tmp_path / "sandbox", release=UPGRADE_FROM, nodes=1) as sandbox:
        sandbox.kubectl_run("apply", "--server-side", "-f", str(repo_root / "crds"))
        sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        sandbox.kubectl_run("create", "namespace", NAMESPACE)
        eventually(
            lambda: sandbox.kubectl_run("get", "serviceaccount", "default", "-n", NAMESPACE),
            timeout=60,
            what="the default service account",
        )
        yield sandbox


@pytest.fixture
def old_controller(old_cluster: Sandbox, tmp_path: Path) -> Iterator[Controller]:
    running = Controller(old_cluster, tmp_path / "delivery.log")
    running.start()
    eventually(
        lambda: "conversion webhook at" in running.tail() or None, timeout=60, what="the webhook serving"
    )
    yield running
    running.stop()


# On a cold machine the 1.36 binaries may still be building in scripts/test.sh's background when
# this test starts: its fixture waits for that build (sandbox.build), which may take longer than
# the default timeout.
@pytest.mark.timeout(2400)
def test_a_canary_paused_before_a_control_plane_upgrade_completes_after_it(
    old_cluster: Sandbox, old_controller: Controller
) -> None:
    sandbox = old_cluster
    assert sandbox.server_version() == UPGRADE_FROM.kubernetes.version
    release(sandbox, NAMESPACE, "web:1")
    first = wait_for(sandbox, "web", NAMESPACE, phase="Healthy")["stableRevision"]
    release(sandbox, NAMESPACE, "web:2")
    paused = wait_for(sandbox, "web", NAMESPACE, timeout=60, phase="Paused", currentStepIndex=3)
    new = paused["canaryRevision"]
    assert replicas_by_revision(sandbox, "web", NAMESPACE) == {first: 2, new: 3}

    sandbox.upgrade(NEWEST)

    assert sandbox.server_version() == NEWEST.kubernetes.version
    alive = sandbox.alive()
    assert {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} <= set(alive)
    # The paused canary is still paused on the newer apiserver, read from the same etcd data.
    still = wait_for(sandbox, "web", NAMESPACE, timeout=60, phase="Paused", currentStepIndex=3)
    assert still["canaryRevision"] == new
    sandbox.kubectl_run("annotate", "rollout", "web", "-n", NAMESPACE, f"{PROMOTE}=step")
    done = wait_for(sandbox, "web", NAMESPACE, timeout=90, phase="Healthy", stableRevision=new)
    assert done["weights"] == {"canary": 0, "stable": 100}
    assert replicas_by_revision(sandbox, "web", NAMESPACE) == {first: 0, new: 5}
    assert old_controller.process is not None
    assert old_controller.process.alive()  # it rode the upgrade out
