"""Leader election with a `coordination.k8s.io/v1` Lease, the way client-go's leaderelection does it.

Several replicas run; each keeps its watches and caches warm, only the Lease holder writes. The
holder renews the Lease every `retry_period`; a standby takes it once the holder has not renewed
for `lease_duration`. Expiry is judged by this replica's own clock from the moment it last saw the
Lease *change* (never by comparing `renewTime` with our clock), so skew between nodes cannot make
two replicas leaders. Every write of the Lease is guarded by its resourceVersion: of two standbys
racing for an expired Lease, exactly one wins.

A leader that cannot renew within `renew_deadline` (shorter than `lease_duration`) steps down on
its own clock before any standby can see the Lease expire. Stepping down is itself a task of the
event loop, so a loop blocked past the deadline cannot step down in time: the `Fence` it keeps
extended is what stops such a replica's writes (see `delivery.kube.fence`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from delivery.kube.api import Kube, KubeError, Object
from delivery.kube.fence import Fence
from delivery.kube.kinds import LEASE

DEFAULT_LEASE_NAME = "delivery-controller"

log = logging.getLogger(__name__)


def default_identity() -> str:
    """The pod's name in a cluster (stable across container restarts); host and pid elsewhere."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def lease_name(controller_id: str | None) -> str:
    """Shards elect separately: each controller id has its own Lease."""
    return f"{DEFAULT_LEASE_NAME}-{controller_id}" if controller_id else DEFAULT_LEASE_NAME


@dataclass(frozen=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry-period < renew-deadline < lease-duration, got "
                f"{self.retry_period} < {self.renew_deadline} < {self.lease_duration}"
            )


def micro_time(moment: datetime.datetime) -> str:
    """The Lease's MicroTime format."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires and renews one Lease; `on_change(True/False)` is called when leadership flips."""

    def __init__(
        self,
        kube: Kube,
        config: LeaseConfig,
        on_change: Callable[[bool], None],
        fence: Fence | None = None,
    ) -> None:
        self.kube = kube
        self.config = config
        self._on_change = on_change
        self.fence = fence or Fence()
        self.leading = False
        self._observed: Object | None = None  # the Lease spec as last seen
        self._observed_at = 0.0  # loop time when it last changed
        self._version = ""  # resourceVersion of our last write

    async def run(self) -> None:
        """Stand by, lead, step down, stand by again, until cancelled (which releases the Lease)."""
        loop = asyncio.get_running_loop()
        config = self.config
        try:
            while True:
                # Deadlines count from when a successful request was sent, not answered: the
                # Lease may have been written at any moment in between.
                renewed = loop.time()
                while not await self._try_acquire_or_renew():
                    await asyncio.sleep(config.retry_period)
                    renewed = loop.time()
                self.fence.extend(renewed + config.renew_deadline)
                self._set(True)
                while loop.time() - renewed < config.renew_deadline:
                    await asyncio.sleep(config.retry_period)
                    attempt = loop.time()
                    left = config.renew_deadline - (attempt - renewed)
                    with contextlib.suppress(TimeoutError):
                        if await asyncio.wait_for(self._try_acquire_or_renew(), timeout=max(left, 0.01)):
                            renewed = attempt
                            self.fence.extend(renewed + config.renew_deadline)
                log.error(
                    "lost the Lease %s/%s: not renewed within %.1fs; stopping writes",
                    config.namespace,
                    config.name,
                    config.renew_deadline,
                )
                self._set(False)
        finally:
            if self.leading:
                self._set(False)
                await asyncio.shield(self._release())

    def _set(self, leading: bool) -> None:
        self.leading = leading
        if not leading:
            self.fence.revoke()
        if leading:
            log.info(
                "leading with Lease %s/%s as %s",
                self.config.namespace,
                self.config.name,
                self.config.identity,
            )
        self._on_change(leading)

    async def _try_acquire_or_renew(self) -> bool:
        config = self.config
        loop = asyncio.get_running_loop()
        stamp = micro_time(datetime.datetime.now(datetime.UTC))
        try:
            lease = await self.kube.get(LEASE, config.namespace, config.name)
            if lease is None:
                spec = self._spec({}, stamp)
                created = await self.kube.create(
                    LEASE,
                    config.namespace,
                    {
                        "apiVersion": LEASE.api_version,
                        "kind": LEASE.kind,
                        "metadata": {"name": config.name, "namespace": config.namespace},
                        "spec": spec,
                    },
                )
                self._remember(created, loop.time())
                return True
            current: Object = lease.get("spec") or {}
            if current != self._observed:
                self._observed, self._observed_at = current, loop.time()
            holder = current.get("holderIdentity") or ""
            duration = current.get("leaseDurationSeconds") or config.lease_duration
            if holder and holder != config.identity and loop.time() < self._observed_at + duration:
                return False
            written = await self.kube.patch_guarded(
                LEASE,
                config.namespace,
                config.name,
                lease["metadata"]["resourceVersion"],
                {"spec": self._spec(current, stamp)},
            )
        except KubeError as error:
            # A conflict is another replica winning the race; anything else is retried the same way.
            log.debug("Lease %s/%s not taken: %s", config.namespace, config.name, error)
            return False
        except (
            OSError,
            aiohttp.ClientError,
        ) as error:  # the apiserver unreachable: not ours until it answers
            log.warning("Lease %s/%s: apiserver unreachable: %s", config.namespace, config.name, error)
            return False
        self._remember(written, loop.time())
        return True

    def _spec(self, current: Object, stamp: str) -> dict[str, Any]:
        config = self.config
        ours = current.get("holderIdentity") == config.identity
        return {
            "holderIdentity": config.identity,
            "leaseDurationSeconds": max(1, round(config.lease_duration)),
            "acquireTime": current.get("acquireTime", stamp) if ours else stamp,
            "renewTime": stamp,
            "leaseTransitions": current.get("leaseTransitions", 0) + (0 if ours or not current else 1),
        }

    def _remember(self, lease: Object, at: float) -> None:
        self._observed, self._observed_at = lease.get("spec") or {}, at
        self._version = lease["metadata"]["resourceVersion"]

    async def _release(self) -> None:
        """On a clean stop, hand the Lease over at once instead of making a standby wait it out."""
        config = self.config
        stamp = micro_time(datetime.datetime.now(datetime.UTC))
        try:
            await self.kube.patch_guarded(
                LEASE,
                config.namespace,
                config.name,
                self._version,
                {"spec": {"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": stamp}},
            )
            log.info("released the Lease %s/%s", config.namespace, config.name)
        except (KubeError, OSError, aiohttp.ClientError) as error:
            log.warning("could not release the Lease %s/%s: %s", config.namespace, config.name, error)
