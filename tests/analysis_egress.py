"""The egress rule every test controller needs: the sandbox, its Prometheus and the tests' servers
all listen on loopback, which analysis refuses by default (delivery/analysis/egress.py).

Allowed by address, without a port, so the apiserver (on loopback too, refused by address and
port) stays refused even here."""

from __future__ import annotations

from delivery.analysis.egress import Egress

LOOPBACK = "127.0.0.1"
FLAG = f"--analysis-allow={LOOPBACK}"
"""Given to every controller a test starts that measures against loopback."""
POLICY = Egress.from_flags([LOOPBACK], [])
"""The same, for tests that call the providers in-process."""
