"""The pinned versions of everything the sandbox builds, in one place.

The versions are also the cache keys: a binary is rebuilt only when its version here changes.
Kubernetes matches kubectl 1.32; etcd 3.5 is the line Kubernetes 1.32 is tested with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GOMOD_DIR = Path(__file__).resolve().parent / "gomod"


@dataclass(frozen=True)
class Component:
    """One cached build: its name, version and the commands it produces."""

    name: str
    version: str
    commands: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


KUBERNETES = Component(
    "kubernetes",
    "v1.32.4",
    ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"),
)
ETCD = Component("etcd", "v3.5.21", ("etcd",))
KWOK = Component("kwok", "v0.7.0", ("kwok",))
# Serves metrics.k8s.io from kwok's simulated kubelet resource metrics, so the controller-manager's
# HPA controller acts on real numbers. 0.8 is the line for Kubernetes 1.31 and later (its README's
# compatibility matrix); 0.9 supports 1.34 and later only.
METRICS_SERVER = Component("metrics-server", "v0.8.0", ("metrics-server",))
# Not part of the control plane: the tests render and install charts/delivery with the real helm.
HELM = Component("helm", "v3.17.4", ("helm",))
# Not builds: the standard-channel CRDs shipped inside the `sigs.k8s.io/gateway-api` module, oldest
# first. The newest is applied at every start: v1.7.0, the newest release, made for Kubernetes 1.37
# (its module asks for Go 1.27, so only its zip is fetched, never built). v1.2.1, what the sandbox
# installed before, is still tested: the Gateway API canary runs on each (test_rollout_traffic.py).
GATEWAY_API_VERSIONS = ("v1.2.1", "v1.7.0")
GATEWAY_API = GATEWAY_API_VERSIONS[-1]

ALL = (KUBERNETES, ETCD, KWOK, METRICS_SERVER, HELM)
