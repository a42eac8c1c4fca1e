"""The pinned versions of everything the sandbox builds, in one place: a matrix of Kubernetes
releases, each with the etcd, kubectl, kwok and metrics-server it runs with.

The versions are also the cache keys: a binary is rebuilt only when its version here changes.
Kubernetes and etcd are built from small modules of our own, `gomod/<name>-<version>/` (see
`sandbox.build`); a release's etcd is the line its own module is tested with
(`build/dependencies.yaml` of `k8s.io/kubernetes`).

`DELIVERY_KUBERNETES` (a minor, `1.33`, or a full version) selects the release a sandbox runs,
`DEFAULT` without it; `python -m sandbox up --kubernetes 1.33` does the same from a shell.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

GOMOD_DIR = Path(__file__).resolve().parent / "gomod"
ENV = "DELIVERY_KUBERNETES"

CONTROL_PLANE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class Component:
    """One cached build: its name, version and the commands it produces."""

    name: str
    version: str
    commands: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def minor(self) -> str:
        """`1.37` of `v1.37.2`."""
        return ".".join(self.version.removeprefix("v").split(".")[:2])

    @property
    def gomod(self) -> Path:
        """The module of our own that the build runs in (Kubernetes and etcd only)."""
        return GOMOD_DIR / self.key


def kubernetes(version: str, *, kubectl: bool = True) -> Component:
    commands = (*CONTROL_PLANE_COMMANDS, "kubectl") if kubectl else CONTROL_PLANE_COMMANDS
    return Component("kubernetes", version, commands)


def etcd(version: str) -> Component:
    return Component("etcd", version, ("etcd",))


KWOK = Component("kwok", "v0.7.0", ("kwok",))
# Serves metrics.k8s.io from kwok's simulated kubelet resource metrics, so the controller-manager's
# HPA controller acts on real numbers. 0.8 is the line for Kubernetes 1.31 and later (its README's
# compatibility matrix) and so serves every release below; 0.9 supports 1.34 and later only.
METRICS_SERVER = Component("metrics-server", "v0.8.0", ("metrics-server",))


@dataclass(frozen=True)
class Release:
    """One Kubernetes release of the matrix and what runs beside it."""

    kubernetes: Component
    etcd: Component
    # kubectl comes from `kubectl_from`: the release's own build unless it builds none.
    kubectl_from: Component
    kwok: Component = KWOK
    metrics_server: Component = METRICS_SERVER

    @property
    def minor(self) -> str:
        return self.kubernetes.minor

    @property
    def builds(self) -> tuple[Component, ...]:
        """What a sandbox of this release needs built, each once."""
        parts = (self.kubernetes, self.etcd, self.kubectl_from, self.kwok, self.metrics_server)
        return tuple(dict.fromkeys(parts))


def _release(version: str, etcd_version: str) -> Release:
    built = kubernetes(version)
    return Release(built, etcd(etcd_version), kubectl_from=built)


# The newest served and the default of the whole suite; its module pins etcd 3.7.0.
NEWEST = _release("v1.37.2", "v3.7.3")
# The oldest we promise (see the README's "Supported Kubernetes versions"): its module pins etcd
# 3.5.24 and links the 3.5.21 client; 3.5.21 is the sandbox's build of that line.
OLDEST = _release("v1.33.13", "v3.5.21")
# Where the upgrade-in-place test starts (tests/integration/test_upgrade.py): the minor before the
# newest, upgraded to NEWEST on the same etcd (3.6, its module's line, which 1.37 also serves on).
# Only the control plane is built: the newest kubectl is within the one minor of skew kubectl
# allows, and saves the 194 packages only kubectl needs.
UPGRADE_FROM = Release(kubernetes("v1.36.3", kubectl=False), etcd("v3.6.16"), kubectl_from=NEWEST.kubernetes)

# The releases CI tests: the whole suite on DEFAULT, the `matrix` subset on every other one.
MATRIX = (NEWEST, OLDEST)
DEFAULT = NEWEST
# In the order `python -m sandbox build --all` builds them: the upgrade test's before the other
# releases of the matrix, since it runs in the whole suite, while they are built in the background.
KNOWN = (DEFAULT, UPGRADE_FROM, *(each for each in MATRIX if each is not DEFAULT))

# Not part of the control plane: the tests render and install charts/delivery with the real helm.
HELM = Component("helm", "v3.17.4", ("helm",))
# Not builds: the standard-channel CRDs shipped inside the `sigs.k8s.io/gateway-api` module, oldest
# first. The newest is applied at every start: v1.7.0, the newest release, made for Kubernetes 1.37
# (its module asks for Go 1.27, so only its zip is fetched, never built). v1.2.1, what the sandbox
# installed before, is still tested: the Gateway API canary runs on each (test_rollout_traffic.py).
GATEWAY_API_VERSIONS = ("v1.2.1", "v1.7.0")
GATEWAY_API = GATEWAY_API_VERSIONS[-1]


def release(name: str) -> Release:
    """The release named by a minor (`1.37`) or a version (`1.37.2`, `v1.37.2`)."""
    wanted = name.removeprefix("v")
    for known in KNOWN:
        if wanted in (known.minor, known.kubernetes.version.removeprefix("v")):
            return known
    names = ", ".join(known.kubernetes.version for known in KNOWN)
    raise ValueError(f"no Kubernetes {name} in the sandbox's matrix (it has {names})")


def selected() -> Release:
    """The release `DELIVERY_KUBERNETES` names, or DEFAULT."""
    name = os.environ.get(ENV, "").strip()
    return release(name) if name else DEFAULT


if __name__ == "__main__":
    # For scripts/test.sh: `selected` prints the version the whole suite runs on (DELIVERY_KUBERNETES's
    # or the default), `others` every other release of the matrix, one a line.
    if sys.argv[1:] == ["selected"]:
        print(selected().kubernetes.version)
    elif sys.argv[1:] == ["others"]:
        print("\n".join(each.kubernetes.version for each in MATRIX if each is not selected()))
    else:
        sys.exit("usage: python -m sandbox.versions selected|others")
