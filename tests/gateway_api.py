"""Gateway API's CRDs of one release in place of the sandbox's (the newest, applied at its start).

Recent releases come with a ValidatingAdmissionPolicy, `safe-upgrades`, that refuses CRDs of an
older release; going back removes it first, as its own message says to (the apiserver stops
enforcing it a moment after: the apply is tried until then), and going forward installs it again.
"""

from __future__ import annotations

import json

from sandbox import build
from sandbox.cluster import Sandbox
from sandbox.versions import GATEWAY_API
from tests.waiting import eventually

SAFE_UPGRADES = "safe-upgrades.gateway.networking.k8s.io"
HTTP_ROUTES_CRD = "httproutes.gateway.networking.k8s.io"
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
DEFAULT = GATEWAY_API


def installed(sandbox: Sandbox) -> str:
    """The release of the HTTPRoute CRD in the cluster, as its annotation says."""
    crd = json.loads(sandbox.kubectl_run("get", "crd", HTTP_ROUTES_CRD, "-o", "json"))
    return str(crd["metadata"]["annotations"][BUNDLE_VERSION])


def install(sandbox: Sandbox, version: str) -> None:
    """The standard-channel CRDs of `version`, established, over whatever release is installed."""
    sandbox.kubectl_run(
        "delete",
        "validatingadmissionpolicybinding,validatingadmissionpolicy",
        SAFE_UPGRADES,
        "--ignore-not-found",
    )
    crds = str(build.gateway_api_crds(version))
    eventually(
        lambda: sandbox.kubectl_run("apply", "--server-side", "-f", crds) or True,
        timeout=30,
        interval=1,
        what=f"Gateway API {version}'s CRDs applied",
    )
    sandbox.kubectl_run("wait", "--for=condition=Established", "crd", HTTP_ROUTES_CRD, "--timeout=60s")
