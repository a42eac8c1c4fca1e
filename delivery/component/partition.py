"""How a StatefulSet Component releases a new pod template: by lowering the rolling-update
`partition` step by step. Pure: (steps, what runs, memory, now) -> partition and memory.

A StatefulSet updates the pods whose ordinal is at least `partition`, highest first; the others
keep the old template. The steps are the `release.canary.steps` a Deployment would use, read for
pods instead of traffic (a StatefulSet's pods are not interchangeable, so no router splits them):
- `setWeight: W`: W% of the pods (rounded up) run the new template: partition = R - ceil(R*W/100);
  the step is done when those pods are updated and every pod is ready;
- `pause: {duration: D}`: hold for D;
- `pause: {}`: hold until a person promotes it: the Component's annotation
  `component.luojilab.com/promote: "N"` lets steps up to index N pass (a number, not a command to
  consume, so applying it twice or late is harmless).
After the last step, partition 0: every pod is updated. `release.strategy: rolling` has no steps:
partition 0 at once, the StatefulSet's own rolling update.

Memory lives in the StatefulSet's annotations (release revision, step, since when), written in
the same apply as the partition, so a controller killed between two steps resumes where it was.
"""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass

from delivery.api.component import Release
from delivery.api.definition import COMPONENT_GROUP
from delivery.api.durations import seconds
from delivery.api.rollout import StrategyName
from delivery.component.templating import RenderError
from delivery.kube.api import Object
from delivery.rollout.revision import template_hash

REVISION_ANNOTATION = f"{COMPONENT_GROUP}/release-revision"
STEP_ANNOTATION = f"{COMPONENT_GROUP}/release-step"
SINCE_ANNOTATION = f"{COMPONENT_GROUP}/release-step-since"
PROMOTE_ANNOTATION = f"{COMPONENT_GROUP}/promote"


@dataclass(frozen=True)
class Step:
    weight: int | None = None
    pause_seconds: float | None = None
    """With `weight` None: a pause of this long, or (None) until promoted."""


def steps_of(release: Release | None) -> tuple[Step, ...]:
    if release is None or release.strategy is StrategyName.ROLLING:
        return ()
    if release.canary is None:
        raise RenderError("release: a StatefulSet canary needs its steps (setWeight and pause)")
    if release.canary.canary_metadata or release.canary.stable_metadata:
        raise RenderError(
            "release.canary: canaryMetadata and stableMetadata need a Rollout's ReplicaSets; a StatefulSet's"
            " pods are released by partition, one ordinal at a time, with no role to carry"
        )
    steps = []
    for index, step in enumerate(release.canary.steps or ()):
        if step.set_weight is not None:
            steps.append(Step(weight=step.set_weight))
        elif step.pause is not None:
            duration = step.pause.duration
            steps.append(Step(pause_seconds=None if duration is None else seconds(duration)))
        else:
            raise RenderError(
                f"release.canary.steps[{index}]: a StatefulSet is released by setWeight and pause"
            )
    return tuple(steps)


@dataclass(frozen=True)
class Memory:
    revision: str
    step: int
    since: datetime.datetime

    @classmethod
    def from_annotations(cls, annotations: Mapping[str, str]) -> Memory | None:
        try:
            return cls(
                annotations[REVISION_ANNOTATION],
                int(annotations[STEP_ANNOTATION]),
                datetime.datetime.fromisoformat(annotations[SINCE_ANNOTATION]),
            )
        except (KeyError, ValueError):
            return None

    def annotations(self) -> dict[str, str]:
        return {
            REVISION_ANNOTATION: self.revision,
            STEP_ANNOTATION: str(self.step),
            SINCE_ANNOTATION: self.since.isoformat(),
        }


@dataclass(frozen=True)
class Observed:
    replicas: int
    revision: str
    """The hash of the pod template being applied."""
    exists: bool
    memory: Memory | None
    updated: int
    """Pods running the StatefulSet's update revision."""
    ready: int
    promoted: int | None
    now: datetime.datetime


@dataclass(frozen=True)
class Decision:
    partition: int
    memory: Memory
    requeue_after: float | None = None


def _partition(replicas: int, weight: int) -> int:
    return replicas - math.ceil(replicas * weight / 100)


def decide(steps: tuple[Step, ...], observed: Observed) -> Decision:
    """The partition to apply now, and the memory that goes with it."""
    now, replicas = observed.now, observed.replicas
    memory = observed.memory
    if not observed.exists:  # the first pods: nothing to protect
        return Decision(0, Memory(observed.revision, len(steps), now))
    if memory is None or memory.revision != observed.revision:
        memory = Memory(observed.revision, 0, now)
    requeue: float | None = None
    while memory.step < len(steps):
        step = steps[memory.step]
        if step.weight is not None:
            wanted = replicas - _partition(replicas, step.weight)
            done = observed.updated >= wanted and observed.ready >= replicas
        elif step.pause_seconds is not None:
            remaining = step.pause_seconds - (now - memory.since).total_seconds()
            done = remaining <= 0
            requeue = None if done else remaining
        else:
            done = observed.promoted is not None and observed.promoted >= memory.step
        if not done:
            break
        memory = Memory(memory.revision, memory.step + 1, now)
    return Decision(_current_partition(steps, memory.step, replicas), memory, requeue)


def _current_partition(steps: tuple[Step, ...], step: int, replicas: int) -> int:
    """The partition of the last weight reached; all pods kept before the first; 0 after the last."""
    if step >= len(steps):
        return 0
    weights = [s.weight for s in steps[: step + 1] if s.weight is not None]
    return _partition(replicas, weights[-1]) if weights else replicas


def released(
    workload: Object,
    live: Object | None,
    steps: tuple[Step, ...],
    promoted: int | None,
    now: datetime.datetime,
) -> tuple[Object, float | None]:
    """The rendered StatefulSet with the partition and memory of its release; when to look again."""
    revision = template_hash(workload["spec"]["template"])
    memory = (
        Memory.from_annotations((live or {}).get("metadata", {}).get("annotations") or {}) if live else None
    )
    status = (live or {}).get("status") or {}
    # The status counts pods of the template it has seen: only ours once our apply carried it.
    current = (
        live is not None
        and memory is not None
        and memory.revision == revision
        and status.get("observedGeneration", 0) >= live["metadata"].get("generation", 0)
    )
    observed = Observed(
        # An autoscaled StatefulSet renders no replicas: its steps count the pods the autoscaler set.
        replicas=workload["spec"].get("replicas", ((live or {}).get("spec") or {}).get("replicas", 1)),
        revision=revision,
        exists=live is not None,
        memory=memory,
        updated=status.get("updatedReplicas", 0) if current else 0,
        ready=status.get("readyReplicas", 0),
        promoted=promoted,
        now=now,
    )
    decision = decide(steps, observed)
    result = copy.deepcopy(workload)
    result["spec"].setdefault("updateStrategy", {"type": "RollingUpdate"})["rollingUpdate"] = {
        "partition": decision.partition
    }
    metadata = result["metadata"]
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **decision.memory.annotations()}
    return result, decision.requeue_after


def promoted_step(annotations: Mapping[str, str]) -> int | None:
    value = annotations.get(PROMOTE_ANNOTATION, "")
    return int(value) if value.isdigit() else None
