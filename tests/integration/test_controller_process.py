"""The controller process stops cleanly when asked, as a Deployment's rolling restart asks it."""

from __future__ import annotations

import signal
from pathlib import Path

from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.waiting import eventually


def test_sigterm_stops_the_controller_within_seconds(sandbox: Sandbox, crds: None, tmp_path: Path) -> None:
    controller = Controller(sandbox, tmp_path / "delivery.log", args=("--webhook=off",))
    controller.start()
    process = controller.process
    assert process is not None
    eventually(
        lambda: "caches synced" in controller.tail() or None,
        timeout=30,
        what="the caches synced",
    )
    process.popen.send_signal(signal.SIGTERM)
    eventually(lambda: not process.alive(), timeout=15, what="the controller exited")
    assert process.popen is not None
    assert process.popen.wait() == 0
