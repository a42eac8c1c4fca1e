"""The controller under test: the real `delivery run` process against the sandbox, CRDs installed.

It runs as a subprocess (PR_SET_PDEATHSIG, like the sandbox's components) so tests can SIGKILL
and restart it the way a node failure would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox.cluster import Sandbox
from sandbox.processes import Managed, log_tail, spawn
from tests.waiting import eventually


@pytest.fixture(scope="session")
def crds(sandbox: Sandbox, repo_root: Path) -> None:
    sandbox.kubectl_run("apply", "--server-side", "-f", str(repo_root / "crds"))
    sandbox.kubectl_run("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


@dataclass
class Controller:
    sandbox: Sandbox
    log: Path
    args: tuple[str, ...] = ()
    process: Managed | None = field(default=None, repr=False)

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "delivery.cli.main",
            "run",
            f"--kubeconfig={self.sandbox.kubeconfig}",
            *self.args,
        ]
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        self.process = spawn("delivery", argv, self.log, detached=False)

    def kill(self) -> None:
        """SIGKILL, as a node failure would: no chance to clean up."""
        assert self.process is not None
        self.process.kill()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def tail(self) -> str:
        return log_tail(self.log, 60)


@pytest.fixture(scope="session")
def controller(
    sandbox: Sandbox, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    running = Controller(sandbox, tmp_path_factory.mktemp("controller") / "delivery.log")
    running.start()
    # Components are unreadable until the conversion webhook serves and the CRD points at it.
    eventually(
        lambda: "conversion webhook at" in running.tail() or None, timeout=60, what="the webhook serving"
    )
    yield running
    running.stop()
