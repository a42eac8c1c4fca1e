"""The batch re-render inside the Component controller's reconcile: a Component rendered from older
inputs waits for its turn, the Components the batch admits are queued, and the batch's progress is
written on the ClusterProfile as its `Rerendered` condition.

What the batch decides is `batch` (pure, over the Components' statuses). This module holds the rest
of its in-memory state in one place, the `Batch` (its grants and last decision) and the report last
written, and does its I/O: a status write of the ClusterProfile when the report changes, one at a
time (the workers' reconciles would otherwise race on the one object).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Iterable

from delivery.component.batch import Batch, Pacing, awaits_turn, profile_condition
from delivery.component.scope import rendered
from delivery.kube.api import Kube, KubeError, Object
from delivery.kube.informer import Key, key_of
from delivery.kube.kinds import CLUSTER_PROFILE
from delivery.report import Condition, merge_conditions, now

log = logging.getLogger(__name__)

RECHECK = 5.0
"""Seconds: a Component held back by the batch looks again (and so notices a deadline passing)."""


class Rerender:
    """The batch over `components` (all the controller knows, read when it decides), admitting by
    `admit` (the controller queues them), reporting on the ClusterProfile named `profile`."""

    def __init__(
        self,
        kube: Kube,
        batch: Batch,
        profile: str,
        components: Callable[[], Iterable[Object]],
        admit: Callable[[Key], None],
    ) -> None:
        self.kube = kube
        self.batch = batch
        self.profile = profile
        self._components = components
        self._admit = admit
        self._reported: tuple[str, str] | None = None
        self._report_lock = asyncio.Lock()

    async def held_back(self, component: Object, revision: str) -> bool:
        """Whether `component`, rendered from older inputs with its spec unchanged since, must wait
        for its turn before it is rendered from `revision`."""
        if not awaits_turn(component, revision):
            return False
        decision = self._pace(revision)
        await self._report(decision)
        return key_of(component) not in decision.admitted

    async def settle(self, revision: str) -> float | None:
        """After a Component was rendered from `revision`: the batch decided again while it is not
        settled, so the next ones start as this one becomes ready. Seconds until the batch should be
        looked at again, if it should."""
        if self.batch.settled(revision):
            return None
        decision = self._pace(revision)
        await self._report(decision)
        return None if decision.complete or decision.halted else RECHECK

    def _pace(self, revision: str) -> Pacing:
        """The batch's decision over every managed Component; those admitted are queued."""
        managed = [c for c in self._components() if rendered(c)]
        decision = self.batch.decide(managed, revision, datetime.datetime.now(datetime.UTC))
        for key in decision.admitted:
            self._admit(key)
        return decision

    async def _report(self, decision: Pacing) -> None:
        """The batch's progress as the ClusterProfile's `Rerendered` condition, written when it changes."""
        condition = profile_condition(decision, self.batch.limit)
        async with self._report_lock:
            if (condition.reason, condition.message) != self._reported:
                await self._write(decision, condition)

    async def _write(self, decision: Pacing, condition: Condition) -> None:
        if decision.halted:
            log.warning("batch re-render: %s", condition.message)
        profile = await self.kube.get(CLUSTER_PROFILE, None, self.profile)
        if profile is not None:
            metadata = profile["metadata"]
            previous = profile.get("status") or {}
            conditions = merge_conditions(
                previous.get("conditions", []), [condition], metadata.get("generation", 1), now()
            )
            try:
                await self.kube.patch_guarded(
                    CLUSTER_PROFILE,
                    None,
                    metadata["name"],
                    metadata["resourceVersion"],
                    {"status": {"conditions": conditions}},
                    subresource="status",
                )
            except KubeError as error:
                if error.conflict:
                    return  # changed meanwhile (its owner applied it): the next decision reports again
                raise
        self._reported = (condition.reason, condition.message)
