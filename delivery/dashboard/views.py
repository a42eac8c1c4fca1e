"""What the page shows of each object, made from the object as the apiserver sends it: pure.

The server keeps these views, never the objects: a Rollout's view holds the fields the page shows
(its row, its steps, its analyses' measurements), a ReplicaSet's its counts, an Event its line. So
the memory held grows with what is shown, not with the objects' size (a pod template, managed
fields, annotations), and the views are what goes to the browser as JSON.

A threshold is read from an analysis condition's tree (`result[0] < 0.01`: the number the result
is compared with), so a chart can draw the line a measurement must stay on the right side of.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from delivery.analysis.expr.errors import ExprError
from delivery.analysis.expr.parser import parse_tree
from delivery.analysis.expr.tree import Binary, Call, Constant, Default, Index, Node, Result, Unary
from delivery.api.durations import seconds
from delivery.dashboard.summary import canary_steps, condition, describe_step, step_of
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL

View = dict[str, Any]
Key = tuple[str, str]  # namespace, name

EVENTS_KEPT = 20  # per Rollout, the newest
WEIGHTS_KEPT = 240  # per Rollout: points of the weight-over-time chart
ANALYSES_SHOWN = 4  # per Rollout page: the newest analysis records
ROW_KEYS = (
    "namespace",
    "name",
    "strategy",
    "phase",
    "step",
    "weight",
    "ready",
    "stable",
    "canary",
    "created",
)

COMPARISONS = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _created(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("creationTimestamp") or "")


def rollout_row(rollout: Mapping[str, Any]) -> View:
    """The list page's row: namespace, phase, step n/m, weight, stable/canary revision, age."""
    metadata, spec, status = rollout["metadata"], rollout.get("spec") or {}, rollout.get("status") or {}
    weight = (status.get("weights") or {}).get("canary")
    return {
        "namespace": metadata.get("namespace", ""),
        "name": metadata["name"],
        "strategy": next(iter(spec.get("strategy") or {}), "?"),
        "phase": status.get("phase") or "Unknown",
        "step": step_of(spec, status),
        "weight": weight,
        "ready": f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        "stable": status.get("stableRevision") or "",
        "canary": status.get("canaryRevision") or "",
        "created": _created(rollout),
    }


def row_of(view: View) -> View:
    """A Rollout's list row out of its whole view."""
    return {key: view[key] for key in ROW_KEYS}


def pause_ends_at(step: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    """When the current timed pause ends (RFC 3339), for the page's countdown; None for a pause
    until promoted, or before the controller recorded when it started."""
    duration = (step.get("pause") or {}).get("duration")
    started = status.get("pauseStartTime")
    if duration is None or not started:
        return None
    try:
        length = seconds(duration)
    except ValueError:
        return None
    ends = datetime.datetime.fromisoformat(started) + datetime.timedelta(seconds=length)
    return ends.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timeline(spec: Mapping[str, Any], status: Mapping[str, Any]) -> list[View]:
    """Each canary step: done, current or to come; the current pause with the moment it ends."""
    steps = canary_steps(spec)
    index = status.get("currentStepIndex")
    if condition(status, "Completed") or index is None:
        index = len(steps) if condition(status, "Completed") else -1
    shown: list[View] = []
    for number, step in enumerate(steps):
        state = "done" if number < index else "current" if number == index else "to come"
        view: View = {"description": describe_step(step), "state": state}
        if state == "current" and "pause" in step:
            view["pauseEndsAt"] = pause_ends_at(step, status)
        shown.append(view)
    return shown


def measured(value: str | None) -> float | None:
    """A measurement's value as a number to chart: the JSON the provider gave (a number, or the
    first number of a list, as Prometheus vectors come), else None (a string, an error)."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    while isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
        return None
    return float(data)


def _analysis(record: Mapping[str, Any]) -> View:
    return {
        "name": record.get("name", ""),
        "kind": record.get("kind", "Step"),
        "revision": record.get("revision", ""),
        "stepIndex": record.get("stepIndex"),
        "phase": record.get("phase", ""),
        "message": record.get("message", ""),
        "startedAt": record.get("startedAt"),
        "metrics": [
            {
                "name": metric["name"],
                "phase": metric.get("phase", ""),
                "dryRun": bool(metric.get("dryRun")),
                "measurements": [
                    {
                        "at": taken.get("finishedAt"),
                        "value": measured(taken.get("value")),
                        "phase": taken.get("phase", ""),
                    }
                    for taken in metric.get("measurements") or []
                ],
            }
            for metric in record.get("metrics") or []
        ],
    }


def rollout_view(rollout: Mapping[str, Any]) -> View:
    """Everything the server keeps of a Rollout: its row, and what its page shows of it."""
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    history = status.get("analysisHistory") or []
    return {
        **rollout_row(rollout),
        "message": status.get("message") or "",
        "state": status.get("state") or "",
        "steps": timeline(spec, status),
        "analyses": [_analysis(record) for record in history[-ANALYSES_SHOWN:]],
    }


def rollout_of(body: Mapping[str, Any]) -> str:
    """The Rollout a ReplicaSet belongs to, by the controller's label ("" if none)."""
    return str(((body.get("metadata") or {}).get("labels") or {}).get(ROLLOUT_LABEL, ""))


def replicaset_view(replicaset: Mapping[str, Any]) -> View:
    """A revision's pods: wanted, ready and available, from the ReplicaSet's status."""
    metadata, spec = replicaset["metadata"], replicaset.get("spec") or {}
    status = replicaset.get("status") or {}
    containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
    return {
        "name": metadata["name"],
        "revision": (metadata.get("labels") or {}).get(HASH_LABEL, ""),
        "replicas": spec.get("replicas", 0),
        "ready": status.get("readyReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "images": [container.get("image", "") for container in containers],
        "created": _created(replicaset),
    }


def event_view(event: Mapping[str, Any]) -> View:
    """One Event as a line of the page, at its latest occurrence."""
    at = event.get("lastTimestamp") or event.get("eventTime") or _created(event)
    return {
        "name": event["metadata"]["name"],
        "type": event.get("type", ""),
        "reason": event.get("reason", ""),
        "message": event.get("message", ""),
        "count": event.get("count") or 1,
        "at": at,
    }


def workload_rollout(component: Mapping[str, Any]) -> str | None:
    """The Rollout a Component rendered, if its workload is one (its status lists it)."""
    for rendered in (component.get("status") or {}).get("objects") or []:
        if rendered.get("kind") == "Rollout":
            return str(rendered["name"])
    return None


def component_view(component: Mapping[str, Any]) -> View:
    """A Component's row, less what its Rollout gives it (`component_row` joins them)."""
    status = component.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    phase = "Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"
    return {
        "namespace": component["metadata"].get("namespace", ""),
        "name": component["metadata"]["name"],
        "phase": phase,
        "message": (ready or {}).get("message", ""),
        "rollout": workload_rollout(component),
        "created": _created(component),
    }


def component_row(component: View, rollout: View | None) -> View:
    """The list page's Component row: its own phase, and the release columns of its Rollout."""
    release = {key: (rollout or {}).get(key) for key in ("step", "weight", "stable", "canary")}
    return {**component, **release}


def _numeric(node: Node) -> float | None:
    if isinstance(node, Constant) and isinstance(node.value, int | float) and type(node.value) is not bool:
        return float(node.value)
    if isinstance(node, Unary) and node.operator == "-":
        inner = _numeric(node.operand)
        return None if inner is None else -inner
    return None


def _measures(node: Node) -> bool:
    """Whether a side of a comparison is the measurement: `result`, `result[0]`, `avg(result)`..."""
    if isinstance(node, Result):
        return True
    if isinstance(node, Index):
        return _measures(node.target)
    if isinstance(node, Call):
        return len(node.arguments) >= 1 and _measures(node.arguments[0])
    if isinstance(node, Default):
        return _measures(node.subject)
    return False


def _comparisons(node: Node) -> Iterable[Binary]:
    if isinstance(node, Binary):
        if node.operator in COMPARISONS:
            yield node
        elif node.operator in ("and", "or"):
            yield from _comparisons(node.left)
            yield from _comparisons(node.right)
    elif isinstance(node, Unary) and node.operator == "not":
        yield from _comparisons(node.operand)


def thresholds(source: str | None, kind: str) -> list[View]:
    """The numbers a condition compares the measurement with: `result[0] < 0.01` gives one
    threshold 0.01 with operator `<`, as `measurement < threshold` (a comparison written the other
    way round, `0.01 > result[0]`, is turned). `kind` says which condition (success or failure)."""
    if not source:
        return []
    try:
        tree = parse_tree(source)
    except ExprError:
        return []
    found: list[View] = []
    for comparison in _comparisons(tree):
        left, right = _numeric(comparison.left), _numeric(comparison.right)
        if right is not None and _measures(comparison.left):
            found.append({"value": right, "operator": comparison.operator, "kind": kind})
        elif left is not None and _measures(comparison.right):
            found.append({"value": left, "operator": COMPARISONS[comparison.operator], "kind": kind})
    return found


def template_view(template: Mapping[str, Any]) -> dict[str, View]:
    """What the server keeps of an analysis template: each metric's conditions and thresholds."""
    kept: dict[str, View] = {}
    for metric in (template.get("spec") or {}).get("metrics") or []:
        success, failure = metric.get("successCondition"), metric.get("failureCondition")
        kept[metric["name"]] = {
            "successCondition": success or "",
            "failureCondition": failure or "",
            "thresholds": thresholds(success, "success") + thresholds(failure, "failure"),
        }
    return kept


def with_conditions(
    analyses: Sequence[View],
    namespace: str,
    templates: Mapping[Key, dict[str, View]],
    cluster_templates: Mapping[str, dict[str, View]],
) -> list[View]:
    """The analyses with each metric's conditions and thresholds, from the templates the record
    names (a namespace's template before a cluster one of the same name, as the controller looks)."""
    joined: list[View] = []
    for analysis in analyses:
        names = [name.strip() for name in str(analysis["name"]).split(",") if name.strip()]
        metrics = []
        for metric in analysis["metrics"]:
            known = next(
                (
                    found[metric["name"]]
                    for name in names
                    for found in (templates.get((namespace, name)), cluster_templates.get(name))
                    if found and metric["name"] in found
                ),
                {"successCondition": "", "failureCondition": "", "thresholds": []},
            )
            metrics.append({**metric, **known})
        joined.append({**analysis, "metrics": metrics})
    return joined


def page(
    rollout: View,
    *,
    replicasets: Iterable[View],
    events: Iterable[View],
    weights: Iterable[tuple[str, int]],
    templates: Mapping[Key, dict[str, View]],
    cluster_templates: Mapping[str, dict[str, View]],
) -> View:
    """A Rollout's page: the Rollout, its revisions (role: stable, canary or old), its weight over
    time, its analyses with their thresholds and its newest Events first."""

    def role(revision: str) -> str:
        if revision == rollout["stable"]:
            return "stable"
        return "canary" if revision == rollout["canary"] else "old"

    return {
        **rollout,
        "analyses": with_conditions(rollout["analyses"], rollout["namespace"], templates, cluster_templates),
        "replicasets": sorted(
            ({**rs, "role": role(rs["revision"])} for rs in replicasets),
            key=lambda rs: str(rs["created"]),
            reverse=True,
        ),
        "weights": [{"at": at, "weight": weight} for at, weight in weights],
        "events": sorted(events, key=lambda event: str(event["at"]), reverse=True)[:EVENTS_KEPT],
    }
