"""What a person is shown of a Rollout's steps, in a terminal (the plugin) and on the page alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe_step(step: Mapping[str, Any]) -> str:
    """A canary step as a person writes it: `setWeight 20`, `pause 30s`, `pause (until promoted)`."""
    if "setWeight" in step:
        return f"setWeight {step['setWeight']}"
    if "pause" in step:
        duration = (step["pause"] or {}).get("duration")
        return f"pause {duration}" if duration else "pause (until promoted)"
    if "analysis" in step:
        names = ", ".join(t["templateName"] for t in step["analysis"].get("templates", []))
        return f"analysis {names}".strip()
    if "experiment" in step:
        experiment = step["experiment"]
        templates = ", ".join(f"{t['name']} ({t['specRef']})" for t in experiment.get("templates", []))
        duration = experiment.get("duration")
        return f"experiment {templates}" + (f" for {duration}" if duration else "")
    if "setCanaryScale" in step:
        scale = step["setCanaryScale"]
        return "setCanaryScale " + ", ".join(f"{key}={value}" for key, value in scale.items())
    return "step"


def canary_steps(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    return steps


def condition(status: Mapping[str, Any], kind: str) -> bool:
    """Whether the status's condition `kind` is True."""
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])


def step_of(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    """The STEP column: `n/m`, or `-` without canary steps or before the controller set an index.
    A first release is complete at step 0 (it had no steps to take): shown as m/m."""
    steps = canary_steps(spec)
    index = status.get("currentStepIndex")
    if condition(status, "Completed"):
        index = len(steps)
    return f"{min(index, len(steps))}/{len(steps)}" if steps and index is not None else "-"
