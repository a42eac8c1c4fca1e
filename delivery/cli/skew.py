"""kubectl's version against the server's, warned on stderr by every `kubectl delivery` command
that talks to the cluster when they are further apart than one minor (Kubernetes' own promise).

The kubectl compared is the one that ran the plugin (`kubectl delivery ...` execs us: our parent
process), else the first on PATH, the one a user reaches for next; with none, there is nothing to
compare. Whether to warn is `delivery.kube.discovery.kubectl_skew`, pure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from delivery.kube.api import Kube
from delivery.kube.discovery import ServerVersion, kubectl_skew

VERSION_SECONDS = 5.0  # `kubectl version --client` reads nothing from the network


def kubectl_path() -> str | None:
    """The kubectl that started this process, or the one on PATH."""
    try:
        parent = Path(f"/proc/{os.getppid()}/exe").resolve(strict=True)
    except OSError:  # not Linux, or the parent is gone
        parent = None
    if parent is not None and parent.name.startswith("kubectl"):
        return str(parent)
    return shutil.which("kubectl")


def client_version(kubectl: str) -> ServerVersion | None:
    """What `kubectl version --client` says it is; None when it cannot say."""
    try:
        result = subprocess.run(
            [kubectl, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=VERSION_SECONDS,
            check=False,
        )
        body = json.loads(result.stdout)["clientVersion"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None
    return ServerVersion.from_wire(body)


async def warn_skew(kube: Kube, out: TextIO = sys.stderr) -> str | None:
    """Warn on `out` when kubectl is beyond one minor of the server; the warning, if any."""
    kubectl = kubectl_path()
    client = client_version(kubectl) if kubectl else None
    if client is None:
        return None
    warning = kubectl_skew(client, ServerVersion.from_wire(await kube.request("GET", "/version")))
    if warning is not None:
        print(f"kubectl delivery: warning: {warning}", file=out)
    return warning
