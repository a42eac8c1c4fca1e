"""The controller under test: the real `delivery run` process against the sandbox.

It runs as a subprocess (PR_SET_PDEATHSIG, like the sandbox's components) so tests can SIGKILL
and restart it the way a node failure would.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.cluster import Sandbox
from sandbox.processes import Managed, log_tail, spawn


@dataclass
class Controller:
    """`kubeconfig` gives the process its own identity in the audit log (the admin's by default);
    `env` is added to its environment (`DELIVERY_FAILPOINTS`, say)."""

    sandbox: Sandbox
    log: Path
    args: tuple[str, ...] = ()
    kubeconfig: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: Managed | None = field(default=None, repr=False)

    @classmethod
    def of_shard(
        cls,
        sandbox: Sandbox,
        log: Path,
        shard: str,
        *args: str,
        namespace: str | None = None,
        kubeconfig: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Controller:
        """A controller of its own shard (`--controller-id`), confined to `namespace` if given, that
        serves no conversion webhook (the session's controller does). The session's controller
        leaves the shard's objects alone, so a test can start, kill and count this one freely."""
        confined = (f"--namespace={namespace}",) if namespace else ()
        return cls(
            sandbox,
            log,
            args=(f"--controller-id={shard}", *confined, "--webhook=off", *args),
            kubeconfig=kubeconfig,
            env=env or {},
        )

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "delivery.cli.main",
            "run",
            f"--kubeconfig={self.kubeconfig or self.sandbox.kubeconfig}",
            *self.args,
        ]
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        self.process = spawn("delivery", argv, self.log, detached=False, env=self.env)

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
