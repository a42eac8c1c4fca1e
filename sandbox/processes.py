"""Start, watch and stop the sandbox's processes so that none outlives its owner by accident.

An attached process (the test session's sandbox) gets PR_SET_PDEATHSIG: the kernel kills it when
the process that started it dies, even by SIGKILL, so a killed test run leaves nothing behind.
A detached process (`python -m sandbox up`) gets its own session and is stopped by pid later.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 30


class ComponentFailed(RuntimeError):
    """A component exited or did not become ready; the message carries the tail of its log."""


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Managed:
    """One running component: its name, pid and log file."""

    name: str
    pid: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            waited, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            waited = 0  # not our child (detached, started by another command): ask the kernel
        if waited == self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return not _is_zombie(self.pid)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if not self.alive():
            self._reap()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            while self.alive():
                time.sleep(0.02)
        self._reap()

    def kill(self) -> None:
        """SIGKILL at once, as a node failure would: no chance to clean up."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        while self.alive():
            time.sleep(0.01)
        self._reap()

    def _reap(self) -> None:
        if self.popen is not None:
            self.popen.wait()

    def failure(self, why: str) -> ComponentFailed:
        return ComponentFailed(f"{self.name} {why}; last lines of {self.log}:\n{log_tail(self.log)}")


def _is_zombie(pid: int) -> bool:
    """Exited, waiting to be reaped. A multi-threaded process's leader turns zombie first, while
    its other threads are still exiting and still hold its files (a Go server's listening socket
    for tens of milliseconds), so the process counts as gone only once they have gone too."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = sum(1 for _ in Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z" and threads <= 1


def spawn(
    name: str, argv: Sequence[str], log: Path, *, detached: bool, env: Mapping[str, str] | None = None
) -> Managed:
    """Start `argv` with its output in `log`; `env` is added to this process's environment."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv),
            env={**os.environ, **env} if env else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=detached,
            preexec_fn=None if detached else _die_with_parent,  # noqa: PLW1509 - needs to run in the child
        )
    return Managed(name, popen.pid, log, popen)


def wait_until(process: Managed, ready: Callable[[], bool], *, timeout: float, what: str = "ready") -> None:
    """Poll `ready` until it holds; fail with the component's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise process.failure("exited before it was ready")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    raise process.failure(f"was not {what} within {timeout:.0f}s")
