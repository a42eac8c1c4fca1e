"""Duration strings as Kubernetes users write them (`30s`, `5m`, `1h30m`, `250ms`): the value of a
`delivery.api.common.Duration` field. Beside the schema, so that Rollout plans, analysis schedules
and Component releases read durations the one way without importing each other."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str | int) -> float:
    """`duration` in seconds; ValueError when it is not made only of number-unit parts. Whole
    seconds, as a number or a string of digits, are taken as Argo Rollouts takes a pause's."""
    if isinstance(duration, int):
        return float(duration)
    if duration.isdigit():
        return float(duration)
    parts = _PART.findall(duration)
    if not parts or "".join(number + unit for number, unit in parts) != duration:
        raise ValueError(f"not a duration: {duration!r} (expected e.g. 30s, 5m, 1h30m)")
    return sum(float(number) * _UNIT[unit] for number, unit in parts)
