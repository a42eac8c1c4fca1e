"""The steps of a Component's reconcile that run after its rendered objects are applied (the load
balancer, `slb`, is one), and how their outcomes are put together.

A step owns what it adds: conditions, status fields, Events and when to look again. It keeps
working while the Component is being deleted (its finalizer is its own business), and may say the
Component is `released`, after which nothing more is written to it. The steps are defined here, in
the Component layer, so that a step needs nothing of the controller that runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from delivery.component.adoption import ObjectId
from delivery.component.render import Rendered
from delivery.kube.api import Kube, Object
from delivery.report import Condition, EventNote, record_event, sequence_of


@dataclass(frozen=True)
class StepOutcome:
    """What a step after the apply did, for the status, the Events and the requeue."""

    component: Object
    """The Component as last written (a finalizer change moves its resourceVersion)."""
    conditions: tuple[Condition, ...] = ()
    status: Mapping[str, Any] = field(default_factory=dict)
    """Status fields the step owns (None removes one)."""
    notes: tuple[EventNote, ...] = ()
    requeue_after: float | None = None
    released: bool = False
    """A Component being deleted may now disappear: write nothing more to it."""


class Step(Protocol):
    """A part of the reconcile that runs after the rendered objects are applied (a load balancer).
    `live` holds the Component's objects as they are now; `rendered` is None while the Component is
    being deleted or cannot be rendered."""

    async def __call__(
        self, component: Object, rendered: Rendered | None, live: Mapping[ObjectId, Object]
    ) -> StepOutcome: ...


class Steps:
    """The steps a controller runs, in the order they were added, and the Events they ask for."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._steps: list[Step] = []

    def append(self, step: Step) -> None:
        self._steps.append(step)

    async def run(
        self,
        component: Object,
        rendered: Rendered | None,
        live: Mapping[ObjectId, Object],
        observe: Callable[[Object], None],
    ) -> StepOutcome:
        """Every step in turn, each given the Component as the one before left it (`observe` is told
        of each version); one outcome of them all, or the first that released the Component."""
        conditions: list[Condition] = []
        status: dict[str, Any] = {}
        delays: list[float] = []
        for step in self._steps:
            outcome = await step(component, rendered, live)
            component = outcome.component
            observe(component)
            for note in outcome.notes:
                sequence = sequence_of(component["metadata"]["uid"], note)
                await record_event(self.kube, component, sequence, note)
            if outcome.released:
                return outcome
            conditions += outcome.conditions
            status.update(outcome.status)
            if outcome.requeue_after is not None:
                delays.append(outcome.requeue_after)
        return StepOutcome(component, tuple(conditions), status, requeue_after=min(delays, default=None))
