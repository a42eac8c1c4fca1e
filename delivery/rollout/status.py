"""The Rollout's status after a decision: phase, step, revisions, weights, counts and conditions.

Conditions are what pipelines wait on (`kubectl wait --for=condition=Completed`), so each one is
computed from the machine state alone and stamped with the generation it was decided for: a
Completed condition from the previous release can never satisfy a wait on the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from delivery.api.rollout import MachineState as State
from delivery.machine import PHASE, Transition
from delivery.report import Condition, merge_conditions
from delivery.rollout.decide import Decision, format_time
from delivery.rollout.revision import HASH_LABEL
from strategies import ReplicaSetState

IN_FLIGHT = (State.PROGRESSING, State.ANALYSING, State.PROMOTING, State.PAUSED)
MESSAGE_LIMIT = 1024  # status.message's maxLength: a longer one would have the whole status refused


def conditions(state: State, completed: bool, healthy: bool, reason: str, message: str) -> list[Condition]:
    return [
        Condition("Progressing", state in IN_FLIGHT, reason, message),
        Condition("Paused", state is State.PAUSED, reason, message),
        Condition("Completed", completed, reason, message),
        Condition("Healthy", healthy, reason, message),
        Condition("Aborted", state in (State.ABORTING, State.ABORTED), reason, message),
    ]


def _gated(decision: Decision) -> list[Condition]:
    """Gated: the release is held at a gate (rollout/gates.py); only on a Rollout with hooks.
    Dropped with the hooks (`_dropped`)."""
    if decision.gated is None:
        return []
    held, reason, message = decision.gated
    return [Condition("Gated", held, reason, message[:MESSAGE_LIMIT])]


def _experiment(decision: Decision) -> list[Condition]:
    """Experiment: true while a canary experiment step's ReplicaSets run; its reason the phase
    (ExperimentPending, ExperimentRunning, ExperimentSuccessful...). Only once a Rollout has had one."""
    record = decision.experiment
    if record is None:
        return []
    reason = f"Experiment{record.phase.value}"
    return [Condition("Experiment", not record.final, reason, record.message[:MESSAGE_LIMIT])]


def _dropped(decision: Decision) -> tuple[str, ...]:
    """Conditions that no longer apply: InvalidSpec (the spec is valid again), Gated without hooks."""
    return ("InvalidSpec",) if decision.gated is not None else ("InvalidSpec", "Gated")


def scale_target(
    selector: str, replicasets: tuple[ReplicaSetState, ...], replicas: int, active: str | None
) -> tuple[str, int]:
    """What the scale subresource shows an HPA: the pods it measures, and how many stand for spec.replicas.

    The HPA recommends ceil(utilisation / target * measured pods), the pods the measured load needs
    at the target, and writes it to spec.replicas. So it measures the pods that carry production
    traffic: during a canary the stable's and the canary's together (measured apart, the canary's
    share of the load would look like idle capacity of the stable, which would be scaled below what
    an abort sends back to it). Blue-green's preview takes no production traffic: only the active
    revision's pods (`active`, as Argo Rollouts does). The count is capped at spec.replicas: a routed
    canary's pods beside a full stable, and a surge, are the strategy's; an HPA with an AverageValue
    target keeps the count it is shown while within tolerance, and counted they would be written back
    into spec.replicas and grow the canary again at every sync (argo-rollouts#4847).
    """
    if active is None:
        return selector, min(sum(rs.replicas for rs in replicasets), replicas)
    pods = next((rs.replicas for rs in replicasets if rs.revision == active), 0)
    return ",".join(part for part in (selector, f"{HASH_LABEL}={active}") if part), min(pods, replicas)


def applied(
    replicasets: tuple[ReplicaSetState, ...], desired: Mapping[str, int], current: str
) -> tuple[ReplicaSetState, ...]:
    """The ReplicaSets as the decision's writes leave them: each scaled to its desired count, the
    current revision's made if it was missing (as `act.scale` does), their pods as observed.

    The status reports these, so a scale is counted in the write that records the decision that
    made it; counted from the ReplicaSets as observed before, the echo of that scale would change
    `status.replicas` alone a moment later and cost a status write of its own (one per scale, two
    or three per release)."""
    scaled = tuple(replace(rs, replicas=desired.get(rs.revision, rs.replicas)) for rs in replicasets)
    if desired.get(current, 0) > 0 and all(rs.revision != current for rs in replicasets):
        return (*scaled, ReplicaSetState(current, desired[current]))
    return scaled


def status_of(
    previous: Mapping[str, Any],
    decision: Decision,
    *,
    generation: int,
    replicasets: tuple[ReplicaSetState, ...],
    replicas: int,
    selector: str,
    now: str,
    active: str | None = None,
) -> dict[str, Any]:
    """`selector` selects every pod of the Rollout; `active` is the revision blue-green's active
    Service selects (None for the other strategies)."""
    memory = decision.memory
    transition: Transition | None = decision.transition
    state = memory.state or State.PROGRESSING
    reason = transition.reason.value if transition else previous.get("reason", "")
    message = transition.message if transition else (decision.note or previous.get("message", ""))
    message = message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"
    stable_rs = next((rs for rs in replicasets if rs.revision == memory.stable), None)
    healthy = state is State.HEALTHY and stable_rs is not None and stable_rs.ready >= replicas
    completed = state is State.HEALTHY and memory.stable == memory.revision
    weight = decision.desired.canary_weight
    scaled_selector, scaled_replicas = scale_target(selector, replicasets, replicas, active)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": PHASE[state].value,
        "state": state.value,
        "reason": reason,
        "message": message,
        "stableRevision": memory.stable,
        "canaryRevision": memory.revision,
        "currentStepIndex": memory.index,
        "weights": {"canary": weight, "stable": 100 - weight},
        "replicas": sum(rs.replicas for rs in replicasets),
        "readyReplicas": sum(rs.ready for rs in replicasets),
        "availableReplicas": sum(rs.ready for rs in replicasets),
        "updatedReplicas": next((rs.ready for rs in replicasets if rs.revision == memory.revision), 0),
        "selector": scaled_selector,
        "hpaReplicas": scaled_replicas,
        "abort": memory.aborted,
        "pausedByPerson": memory.paused_by_person,
        "transitionCount": previous.get("transitionCount", 0) + len(decision.transitions),
        "conditions": merge_conditions(
            [c for c in previous.get("conditions", []) if c["type"] not in _dropped(decision)],
            conditions(state, completed, healthy, reason, message) + _gated(decision) + _experiment(decision),
            generation,
            now,
        ),
    }
    if decision.gates is not None:
        status["gates"] = decision.gates.to_status()
    if decision.experiment is not None:
        status["experiment"] = decision.experiment.to_status()
    if decision.runs:
        status["analysisHistory"] = [run.to_status() for run in decision.runs]
    for key, value in (
        ("pauseStartTime", memory.pause_started),
        ("trafficMovedTime", memory.traffic_moved),
        ("progressTime", memory.progressed),
    ):
        if value is not None:
            status[key] = format_time(value)
    return status


COUNTS = frozenset(
    {"replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "hpaReplicas", "progressTime"}
)
"""The fields a status can change in by pods alone: counts, and the progress stamp that moves with
the ready count. A change of these alone may wait (`counts_only`); every other is a fact."""

REPORTED = frozenset({"weights", "trafficMovedTime"})
"""What may wait with the counts when the weight is only reported: a canary with neither a router
nor Services, whose pods are its weight (`decide._reported_only`). The next reconcile decides on
the weight as applied and stamps its move again, no earlier than it was, so a scale-down never
waits less for the wait."""


def counts_only(previous: Mapping[str, Any], status: Mapping[str, Any], *, reported: bool = False) -> bool:
    """Whether `status` differs from `previous` in the counts alone (and does differ); `reported`:
    the weight (and its stamp) count as counts, a Rollout's whose weight is only reported.

    Such a change may wait for the next fact to carry it (`CountsHold`), so the pods of one
    scale-up coming and becoming ready one by one cost no write of their own. A transition, a
    condition, an analysis or a gate always differs in another field too, so it is never held back.
    """
    keys = previous.keys() | status.keys()
    changed = {key for key in keys if previous.get(key) != status.get(key)}
    return bool(changed) and changed <= (COUNTS | REPORTED if reported else COUNTS)


COUNTS_DELAY = 5.0
"""seconds: how long a status differing in its counts alone waits for a fact to carry it."""

MOVING_DELAY = 60.0
"""seconds: as `COUNTS_DELAY`, while a move is in flight and waits on the pods (`CountsHold`)."""


class CountsHold:
    """Since when each Rollout's status has differed from the written one in its counts alone.

    Pods come and go between the controller's steps: a ReplicaSet scaled by one decision changes
    its counts seconds later, and the next fact (the pods ready, the pause over) follows seconds
    after that. Counts alone wait up to `delay` from the first such difference seen, so that the
    fact's write carries them instead of a write of their own: a release of 1,000 Rollouts wrote
    about four counts-only statuses per Rollout when counts went at most once a second.

    While a move is in flight (`moving`: a step, the promotion or an abort waits on the pods, so
    its end is a fact the ReplicaSets will bring) they wait up to `moving_delay`: at 1,000
    Rollouts the controller-manager took 20 to 38 s to count a scale-down, so two of the six
    status writes of a basic canary's release were of counts (and its reported weight) alone,
    each followed by the step's end or the completion. `hpaReplicas`, which the
    HorizontalPodAutoscaler reads through the scale subresource, never waits longer than `delay`.

    Nothing is lost by waiting: the status is computed again from the pods when the wait ends,
    and a kill meanwhile leaves it to the next reconcile, as any unwritten difference is."""

    def __init__(self, delay: float = COUNTS_DELAY, moving_delay: float = MOVING_DELAY) -> None:
        self.delay = delay
        self.moving_delay = moving_delay
        self._since: dict[tuple[str, str], float] = {}

    def wait(
        self,
        key: tuple[str, str],
        previous: Mapping[str, Any],
        status: Mapping[str, Any],
        now: float,
        *,
        reported: bool = False,
        moving: bool = False,
    ) -> float | None:
        """How long `status` still waits at `now` (monotonic seconds); None: it is written now, or
        there is nothing to write. `reported`: as `counts_only`'s; `moving`: a move is in flight
        (`Decision.moving`)."""
        if status == previous:
            self._since.pop(key, None)  # back to what is written: a later change waits afresh
            return None
        if not counts_only(previous, status, reported=reported):
            return None
        scaled = previous.get("hpaReplicas") != status.get("hpaReplicas")
        delay = self.moving_delay if moving and not scaled else self.delay
        left = self._since.setdefault(key, now) + delay - now
        return left if left > 0 else None

    def written(self, key: tuple[str, str]) -> None:
        """The status was written (or the Rollout is gone): nothing of it waits any more."""
        self._since.pop(key, None)
