"""The controllers compared, how each is started, and how each one's Rollout says where it is."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.peers.scenario import Controller
from sandbox.cluster import free_port

ARGO_RAISED_LIMITS = ("--qps", "1000", "--burst", "2000")


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = obj.get("status") or {}
    return status


def _observed_at(obj: dict[str, Any], image: str) -> bool:
    """The controller has seen the spec that asks for `image`.

    By the generation, not a count of our own changes: Argo writes its Rollouts' spec itself on
    the first reconcile (a generation of its own). Argo's observedGeneration is a string.
    """
    containers = obj["spec"]["template"]["spec"]["containers"]
    observed = str(_status(obj).get("observedGeneration", ""))
    return containers[0]["image"] == image and observed == str(obj["metadata"]["generation"])


def delivery_complete(obj: dict[str, Any], image: str) -> bool:
    """Healthy at the spec asking for `image`, its revision stable."""
    status = _status(obj)
    return (
        _observed_at(obj, image)
        and status.get("phase") == "Healthy"
        and status.get("stableRevision") is not None
        and status.get("stableRevision") == status.get("canaryRevision")
    )


def argo_complete(obj: dict[str, Any], image: str) -> bool:
    """status.phase Healthy at the spec asking for `image`, its pod hash the stable one."""
    status = _status(obj)
    return (
        _observed_at(obj, image)
        and status.get("phase") == "Healthy"
        and status.get("stableRS") is not None
        and status.get("stableRS") == status.get("currentPodHash")
    )


def delivery_pause_start(obj: dict[str, Any]) -> str | None:
    start = _status(obj).get("pauseStartTime")
    return str(start) if start else None


def argo_pause_start(obj: dict[str, Any]) -> str | None:
    conditions = _status(obj).get("pauseConditions") or []
    return str(conditions[0]["startTime"]) if conditions else None


@dataclass(frozen=True)
class Contender:
    """One controller as benchmarked: `label` is also its client identity in the audit log."""

    label: str
    controller: Controller
    group: str
    version: str
    complete: Callable[[dict[str, Any], str], bool]
    pause_start: Callable[[dict[str, Any]], str | None]
    extra_args: tuple[str, ...] = ()

    def argv(self, kubeconfig: Path, argo_binary: Path | None, shard: str | None = None) -> list[str]:
        """The command line; `shard`: ours as that shard's controller (`--controller-id`)."""
        if self.controller == "delivery":
            return [
                sys.executable,
                "-m",
                "delivery.cli.main",
                "run",
                f"--kubeconfig={kubeconfig}",
                "--webhook=off",
                # the sandbox's Prometheus listens on loopback, which analysis may not reach unless
                # allowed (Argo has no such guard)
                "--analysis-allow=127.0.0.1",
                *((f"--controller-id={shard}",) if shard else ()),
                *self.extra_args,
            ]
        if shard is not None:
            raise ValueError("only delivery is run in shards")
        if argo_binary is None:
            raise RuntimeError("Argo Rollouts was not built")
        return [
            str(argo_binary),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            f"--metricsPort={free_port()}",
            f"--healthzPort={free_port()}",
            *self.extra_args,
        ]


def identity(label: str, shard: str | None) -> str:
    """A controller's client identity in the audit log: its label, and its shard's id if sharded."""
    return f"{label}-{shard}" if shard else label


DELIVERY = Contender(
    "delivery", "delivery", "delivery.luojilab.com", "v1alpha1", delivery_complete, delivery_pause_start
)
ARGO = Contender("argo", "argo", "argoproj.io", "v1alpha1", argo_complete, argo_pause_start)
ARGO_RAISED = Contender(
    "argo-raised", "argo", "argoproj.io", "v1alpha1", argo_complete, argo_pause_start, ARGO_RAISED_LIMITS
)
# The earlier default of 8 workers: fewer reconciles at once coalesce more watch events into one
# status write (about 18 writes per release instead of 21 at N=100) but react 8x later (p50).
DELIVERY_W8 = Contender(
    "delivery-w8",
    "delivery",
    "delivery.luojilab.com",
    "v1alpha1",
    delivery_complete,
    delivery_pause_start,
    ("--workers=8",),
)
DELIVERY_W16 = Contender(
    "delivery-w16",
    "delivery",
    "delivery.luojilab.com",
    "v1alpha1",
    delivery_complete,
    delivery_pause_start,
    ("--workers=16",),
)
DEFAULT = (DELIVERY, ARGO, ARGO_RAISED)
ALL = (*DEFAULT, DELIVERY_W8, DELIVERY_W16)  # any of them by --contenders
