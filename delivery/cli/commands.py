"""What the plugin's commands write and print, decided from the objects read: pure, unit-tested.

`list` rows, the patch of `set image`, the template `undo` writes back, the patch of `restart`
and when `wait` is done; the plugin module only reads, writes and prints.
"""

from __future__ import annotations

import copy
import datetime
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from delivery.dashboard.summary import condition, step_of
from delivery.kube.api import Kind, Object
from delivery.kube.kinds import DEPLOYMENT, ROLLOUT
from delivery.rollout.revision import HASH_LABEL, TEMPLATE_ANNOTATION, template_hash


class CommandError(RuntimeError):
    """What the user asked for cannot be done as asked; the message says why."""


# --- list ---------------------------------------------------------------------------------------

LIST_COLUMNS = ("NAME", "STRATEGY", "PHASE", "STEP", "WEIGHT", "READY", "STABLE", "CURRENT", "AGE")


def age(created: str | None, now: datetime.datetime) -> str:
    """An object's age as kubectl prints it: `45s`, `3m20s`, `25m`, `5h10m`, `20h`, `2d3h`, `40d`."""
    if not created:
        return "<unknown>"
    seconds = max(int((now - datetime.datetime.fromisoformat(created)).total_seconds()), 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    # (below this many seconds, the larger unit and its remainder in the smaller one)
    for limit, large, small in (
        (120, (seconds, "s"), None),
        (600, (minutes, "m"), (seconds % 60, "s")),
        (3 * 3600, (minutes, "m"), None),
        (8 * 3600, (hours, "h"), (minutes % 60, "m")),
        (48 * 3600, (hours, "h"), None),
        (8 * 86400, (days, "d"), (hours % 24, "h")),
    ):
        if seconds < limit:
            rest = f"{small[0]}{small[1]}" if small and small[0] else ""
            return f"{large[0]}{large[1]}{rest}"
    return f"{days}d"


def list_row(rollout: Object, now: datetime.datetime) -> tuple[str, ...]:
    """One Rollout as a `list` row (LIST_COLUMNS): `-` where a column does not apply."""
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    strategy = next(iter(spec.get("strategy") or {}), "?")
    weight = (status.get("weights") or {}).get("canary")
    return (
        rollout["metadata"]["name"],
        strategy,
        status.get("phase") or "Unknown",
        step_of(spec, status),
        "-" if weight is None else str(weight),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("stableRevision") or "-",
        status.get("canaryRevision") or "-",
        age(rollout["metadata"].get("creationTimestamp"), now),
    )


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Rows under a header, columns padded by three spaces, as kubectl prints a listing."""
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    padded = ("   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines)
    return "\n".join(line.rstrip() for line in padded)


# --- where the pod template lives -----------------------------------------------------------------


@dataclass(frozen=True)
class TemplateOwner:
    """The object whose `spec.template` a Rollout releases: the Rollout or its workloadRef Deployment."""

    kind: Kind
    name: str


def template_owner(rollout: Object) -> TemplateOwner:
    """Where `set image` and `undo` write; a Rollout a Component renders is refused (the Component
    controller would write its own template back)."""
    spec = rollout.get("spec") or {}
    for owner in rollout["metadata"].get("ownerReferences") or []:
        if owner.get("kind") == "Component" and owner.get("controller"):
            raise CommandError(
                f"rollout {rollout['metadata']['name']} is rendered by Component {owner['name']}: "
                "change the Component instead"
            )
    if "componentRef" in spec:
        raise CommandError(
            f"rollout {rollout['metadata']['name']} releases what Component {spec['componentRef']['name']} "
            "renders: change the Component instead"
        )
    if "workloadRef" in spec:
        return TemplateOwner(DEPLOYMENT, spec["workloadRef"]["name"])
    return TemplateOwner(ROLLOUT, rollout["metadata"]["name"])


def guarded(owner_body: Object, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A JSON patch that applies only to the version read (the `test` fails on a newer one)."""
    version = owner_body["metadata"]["resourceVersion"]
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": version}, *operations]


# --- set image -------------------------------------------------------------------------------------


def parse_assignments(texts: Sequence[str]) -> dict[str, str]:
    """`CONTAINER=IMAGE` arguments (`*=IMAGE`: every container), as kubectl set image takes them."""
    assignments: dict[str, str] = {}
    for text in texts:
        container, equals, image = text.partition("=")
        if not equals or not container or not image:
            raise CommandError(f"{text!r} is not CONTAINER=IMAGE")
        assignments[container] = image
    return assignments


def image_patch(template: Mapping[str, Any], assignments: Mapping[str, str]) -> list[dict[str, Any]]:
    """JSON patch operations that set the images of the named containers (init containers too),
    each with a `test` of the container's name, so a list reordered meanwhile is not written over.
    An image already set is not written; a container the template does not have is an error."""
    operations: list[dict[str, Any]] = []
    found: set[str] = set()
    pod = template.get("spec") or {}
    for field in ("initContainers", "containers"):
        for index, container in enumerate(pod.get(field) or []):
            name = container.get("name", "")
            image = assignments.get(name, assignments.get("*"))
            if image is None:
                continue
            found.add(name)
            if container.get("image") == image:
                continue
            path = f"/spec/template/spec/{field}/{index}"
            operations += [
                {"op": "test", "path": f"{path}/name", "value": name},
                {"op": "replace" if "image" in container else "add", "path": f"{path}/image", "value": image},
            ]
    missing = sorted(set(assignments) - found - {"*"})
    if missing:
        raise CommandError(f"no container named {', '.join(missing)} in the pod template")
    return operations


# --- undo ------------------------------------------------------------------------------------------


def revision_of(replicaset: Object) -> str:
    return str(replicaset["metadata"].get("labels", {}).get(HASH_LABEL, ""))


def written_template(replicaset: Object) -> dict[str, Any]:
    """The pod template as the Rollout had it when this ReplicaSet was made: the controller keeps it
    in an annotation, since the apiserver fills in defaults in the ReplicaSet's own copy (written
    back, that copy would hash to a new revision). A ReplicaSet made before the annotation existed
    gives its own copy, less the revision label, as Argo's undo does."""
    kept = (replicaset["metadata"].get("annotations") or {}).get(TEMPLATE_ANNOTATION)
    if kept:
        template: dict[str, Any] = json.loads(kept)
        return template
    template = copy.deepcopy(replicaset["spec"]["template"])
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return template


def undo_target(
    current_template: Mapping[str, Any],
    status: Mapping[str, Any],
    replicasets: Sequence[Object],
    to: str | None,
) -> Object:
    """The ReplicaSet to go back to. `to`: a revision (its pod-template hash, as `get` and `list`
    show it). Unset: the stable revision when a release is in flight, else the newest other one."""
    current = template_hash(dict(current_template))
    by_revision = {revision_of(rs): rs for rs in replicasets if revision_of(rs)}
    if to is not None:
        if to not in by_revision:
            known = ", ".join(sorted(by_revision)) or "none"
            raise CommandError(f"no revision {to} in the history (kept: {known})")
        return by_revision[to]
    stable = status.get("stableRevision")
    if stable and stable != current and stable in by_revision:
        return by_revision[stable]
    older = sorted(
        (rs for revision, rs in by_revision.items() if revision != current),
        key=lambda rs: rs["metadata"].get("creationTimestamp", ""),
    )
    if not older:
        raise CommandError("no earlier revision to go back to")
    return older[-1]


# --- restart ---------------------------------------------------------------------------------------


def format_restart_at(moment: datetime.datetime) -> str:
    """RFC 3339 in whole seconds, UTC, as `spec.restartAt` is written, rounded up: a pod's creation
    time is in whole seconds too, and one made earlier in the same second is then older than
    restartAt, as it should be (Argo rounds down, and leaves such a pod alone)."""
    whole = moment.astimezone(datetime.UTC).replace(microsecond=0)
    if whole < moment:
        whole += datetime.timedelta(seconds=1)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- wait ------------------------------------------------------------------------------------------


class Goal(enum.StrEnum):
    HEALTHY = "healthy"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


class Outcome(enum.IntEnum):
    """`wait`'s exit codes."""

    REACHED = 0
    OTHER = 1  # another end state (aborted when waiting for healthy...), or no such Rollout
    TIMEOUT = 2


def state_of(rollout: Object) -> Goal | str | None:
    """Where the Rollout is, as `wait` names it: a goal, `degraded`, or None while it moves on by
    itself (or the controller has not yet seen its latest spec)."""
    status = rollout.get("status") or {}
    if status.get("observedGeneration") != rollout["metadata"].get("generation", 1):
        return None
    phase = status.get("phase")
    if phase == "Aborted":
        return Goal.ABORTED
    if phase == "Degraded":
        return "degraded"
    if phase == "Paused":
        return Goal.PAUSED
    if condition(status, "Completed"):
        return Goal.HEALTHY if condition(status, "Healthy") else Goal.COMPLETED
    return None


def reached(rollout: Object, goal: Goal) -> Outcome | None:
    """REACHED, OTHER when it stopped somewhere else (only a person moves it on from there), or None."""
    state = state_of(rollout)
    if state is None:
        return None
    if state == goal or (goal is Goal.COMPLETED and state is Goal.HEALTHY):
        return Outcome.REACHED
    if state is Goal.PAUSED or (goal is Goal.HEALTHY and state is Goal.COMPLETED):
        return None  # a pause ends by a timer or a promotion; pods of a completed release get ready
    return Outcome.OTHER
