"""The Rollout's status after a decision: phase, step, revisions, weights, counts and conditions.

Conditions are what pipelines wait on (`kubectl wait --for=condition=Completed`), so each one is
computed from the machine state alone and stamped with the generation it was decided for: a
Completed condition from the previous release can never satisfy a wait on the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def counts_only(previous: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether `status` differs from `previous` in the counts alone (and does differ).

    Such a change is coalesced: written at most once a second per Rollout, so the pods of one
    scale-up becoming ready one by one cost one write, not one each. A transition, a condition, an
    analysis or a gate always differs in another field too, so it is never held back.
    """
    keys = previous.keys() | status.keys()
    changed = {key for key in keys if previous.get(key) != status.get(key)}
    return bool(changed) and changed <= COUNTS
