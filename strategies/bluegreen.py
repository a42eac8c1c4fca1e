"""Blue-green: the new revision runs beside the stable one behind a preview Service, then takes all
production traffic at once when the active Service switches to it.

The switch happens only when the new revision is at full size and ready, and the revision it
leaves keeps its pods until the active Service has left it and the scale-down delay has passed,
so a switch back (an abort) always has somewhere to go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from strategies.handover import hand_over, resize, retire_others, select, selected, settled
from strategies.types import Desired, ReplicaSetState, Role, find


@dataclass(frozen=True)
class BlueGreenFacts:
    replicas: int  # spec.replicas
    stable: str  # the revision the active Service serves; equal to new when there is nothing to roll out
    new: str  # revision of the current pod template
    observed: tuple[ReplicaSetState, ...] = ()
    applied_selectors: Mapping[Role, str] = field(default_factory=dict)  # what each Service selects now
    preview_replicas: int | None = None  # previewReplicaCount: the new revision's size before promotion
    promote: bool = False
    aborted: bool = False
    scale_down_allowed: bool = False  # scaleDownDelaySeconds have passed since the active Service moved

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"replicas {self.replicas} must not be negative")
        if self.preview_replicas is not None and self.preview_replicas < 0:
            raise ValueError(f"previewReplicaCount {self.preview_replicas} must not be negative")


def decide_bluegreen(facts: BlueGreenFacts) -> Desired:
    full = facts.replicas
    stable, new = find(facts.observed, facts.stable), find(facts.observed, facts.new)
    serving = frozenset(facts.applied_selectors.values())
    if facts.stable == facts.new:
        targets = replicas = {facts.stable: full}
        wanted = {Role.ACTIVE: facts.stable, Role.PREVIEW: facts.stable}
    elif facts.aborted or facts.promote:
        # Both hand everything over from one revision to the other: back to stable, or on to new.
        to, away = (stable, new) if facts.aborted else (new, stable)
        targets, replicas = hand_over(to, away, full, serving=serving, allowed=facts.scale_down_allowed)
        wanted = {Role.ACTIVE: to.revision, Role.PREVIEW: to.revision}
    else:
        preview = full if facts.preview_replicas is None else facts.preview_replicas
        targets = {facts.stable: full, facts.new: preview}
        # Down to its preview size only once production traffic is on a full, ready stable.
        shrink = stable.ready >= full and facts.applied_selectors.get(Role.ACTIVE) != facts.new
        replicas = {facts.stable: full, facts.new: resize(new, preview, may_shrink=shrink)}
        wanted = {Role.ACTIVE: facts.stable, Role.PREVIEW: facts.new}
    applied = facts.applied_selectors
    return Desired(
        replicas=replicas | retire_others(facts.observed, replicas, serving, full),
        selectors={
            role: select(
                applied,
                role,
                revision,
                ready=find(facts.observed, revision).ready >= targets[revision],
                before=facts.stable,
            )
            for role, revision in wanted.items()
        },
        done=settled(facts.observed, targets) and selected(applied, wanted),
    )
