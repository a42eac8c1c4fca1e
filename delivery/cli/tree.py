"""What `kubectl delivery get rollout` shows: a Rollout and its ReplicaSets as one tree.

A pure function of the objects as the apiserver sends them, so the live view and a piped
snapshot print the same thing, and tests need no terminal.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from rich.tree import Tree

from delivery.dashboard.summary import describe_step
from delivery.rollout.config import copies_in
from delivery.rollout.experiment import EXPERIMENT_LABEL
from delivery.rollout.revision import HASH_LABEL

PHASE_STYLES = {
    "Healthy": "bold green",
    "Progressing": "bold cyan",
    "Paused": "bold yellow",
    "Degraded": "bold red",
    "Aborted": "bold red",
}
ANALYSIS_STYLES = {"Successful": "green", "Failed": "red", "Inconclusive": "yellow", "Error": "red"}
ANALYSES_SHOWN = 5
EXPERIMENT_STYLES = {**ANALYSIS_STYLES, "Running": "cyan", "Pending": "yellow", "Terminated": "dim"}


def _strategy(spec: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    strategy = spec.get("strategy", {})
    name = next(iter(strategy), "unknown")
    return name, strategy.get("canary", {}).get("steps", [])


def _step_line(status: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    """`step INDEX/COUNT`, the index counted from 0 as in `status.currentStepIndex`, the STEP
    column of `kubectl get rollout` and the controller's messages ("step 1 analysis ...")."""
    index = status.get("currentStepIndex")
    if index is None or not steps:
        return ""
    if index >= len(steps):
        return f"step {len(steps)}/{len(steps)} (all done)"
    return f"step {index}/{len(steps)}: {describe_step(steps[index])}"


def _role(revision: str, status: dict[str, Any]) -> str:
    if revision == status.get("stableRevision"):
        return "stable"
    if revision == status.get("canaryRevision"):
        return "canary"
    return "old"


def _images(replicaset: dict[str, Any]) -> str:
    containers = replicaset["spec"]["template"]["spec"].get("containers", [])
    return ", ".join(container.get("image", "?") for container in containers)


def rollout_tree(rollout: dict[str, Any], replicasets: list[dict[str, Any]]) -> Tree:
    metadata, spec = rollout["metadata"], rollout.get("spec", {})
    status = rollout.get("status") or {}
    phase = status.get("phase", "Unknown")
    strategy, steps = _strategy(spec)
    title = Text.assemble(
        ("rollout ", "bold"),
        (f"{metadata['namespace']}/{metadata['name']}", "bold"),
        "  ",
        (phase, PHASE_STYLES.get(phase, "")),
        f"  {strategy}",
    )
    root = Tree(title)
    details = [
        _step_line(status, steps),
        status.get("message", ""),
    ]
    weights = status.get("weights")
    if weights:
        details.append(f"traffic: stable {weights.get('stable', 100)}%, canary {weights.get('canary', 0)}%")
    if spec.get("restartAt") and spec["restartAt"] != status.get("restartedAt"):
        details.append(f"restart: replacing the pods made before {spec['restartAt']}")
    if status.get("observedGeneration") != metadata.get("generation"):
        details.append("(the controller has not seen the latest spec yet)")
    for line in details:
        if line:
            root.add(Text(line, style="dim" if line.startswith("(") else ""))

    revisions = root.add(Text("revisions", style="bold"))
    trial = [rs for rs in replicasets if EXPERIMENT_LABEL in rs["metadata"].get("labels", {})]
    replicasets = [rs for rs in replicasets if rs not in trial]
    ordered = sorted(replicasets, key=lambda rs: rs["metadata"].get("creationTimestamp", ""), reverse=True)
    for replicaset in ordered:
        revision = replicaset["metadata"].get("labels", {}).get(HASH_LABEL, "?")
        rs_status = replicaset.get("status") or {}
        role = _role(revision, status)
        desired = replicaset["spec"].get("replicas", 0)
        if role == "old" and desired == 0 and not rs_status.get("replicas"):
            continue  # history kept for a rollback, nothing running
        line = revisions.add(
            Text.assemble(
                (f"{revision} ", "bold"),
                (f"{role:<6}", {"stable": "green", "canary": "cyan"}.get(role, "dim")),
                f"  {replicaset['metadata']['name']}",
                f"  {rs_status.get('readyReplicas', 0)}/{desired} ready",
                f"  {_images(replicaset)}",
            )
        )
        # The tracked ConfigMaps and Secrets this revision was released with: its own copies.
        for (kind, source), copy in sorted(copies_in(replicaset["spec"]["template"], revision).items()):
            line.add(Text(f"{kind} {source}: {copy}", style="dim"))

    _experiment(root, status, trial)
    history = status.get("analysisHistory") or []
    if history:
        analyses = root.add(Text("analysis", style="bold"))
        for record in history[-ANALYSES_SHOWN:]:
            where = f"step {record['stepIndex']}" if record.get("stepIndex") is not None else "background"
            if record.get("analysis"):
                where += f" experiment {record['analysis']}"
            analyses.add(
                Text.assemble(
                    f"{record['name']} ({where}, {record['revision']}) ",
                    (record["phase"], ANALYSIS_STYLES.get(record["phase"], "")),
                    f"  {record.get('message', '')}".rstrip(),
                )
            )
    return root


def _experiment(root: Tree, status: dict[str, Any], replicasets: list[dict[str, Any]]) -> None:
    """The latest experiment step: its phase, then each template's ReplicaSet while it runs."""
    experiment = status.get("experiment")
    if not experiment:
        return
    phase = experiment.get("phase", "?")
    branch = root.add(
        Text.assemble(
            (f"experiment (step {experiment.get('stepIndex')}, {experiment.get('revision')}) ", "bold"),
            (phase, EXPERIMENT_STYLES.get(phase, "")),
            f"  {experiment.get('message', '')}".rstrip(),
        )
    )
    by_name = {rs["metadata"]["name"]: rs for rs in replicasets}
    for template in experiment.get("templates") or []:
        replicaset = by_name.get(template["replicaSet"])
        shown = (
            f"{(replicaset.get('status') or {}).get('readyReplicas', 0)}/{template['replicas']} ready"
            f"  {_images(replicaset)}"
            if replicaset is not None
            else ("not made yet" if phase in ("Pending", "Running") else "deleted")
        )
        branch.add(
            Text.assemble(
                (f"{template['podTemplateHash']} ", "bold"),
                f"{template['name']:<8}  {template['replicaSet']}  {shown}",
            )
        )
