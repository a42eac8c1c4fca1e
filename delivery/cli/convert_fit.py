"""What `kubectl delivery convert` shares between Argo Rollouts and Flagger (pure): the record of
what was left out, and fitting an object to our models by leaving out what they refuse.

Fitting is driven by the models, not by a list of fields: an object is validated by the model that
generates its CRD, and each field the model refuses is taken out (the deepest part of the object the
error names), until the model accepts what is left. So a field this version's Rollout gains is kept
by `convert` without a change here, and what `convert` writes is what `kubectl apply` accepts (the
models check every schema constraint and CEL rule of the CRDs). Each field taken out is an
`Omission` with its path in the source object (indices as they were there, not as they are after
earlier removals) and why: a reason written for the fields we know to differ, else the model's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from delivery.analysis import check
from delivery.api.analysis import AnalysisTemplate, ClusterAnalysisTemplate
from delivery.api.common import Model
from delivery.api.definition import DELIVERY_GROUP
from delivery.api.rollout import Rollout

API_VERSION = f"{DELIVERY_GROUP}/v1alpha1"
MODELS: dict[str, type[Model]] = {
    "Rollout": Rollout,
    "AnalysisTemplate": AnalysisTemplate,
    "ClusterAnalysisTemplate": ClusterAnalysisTemplate,
}
_ATTEMPTS = 200
"""Removals at most per object: far above any real manifest's refused fields, a bound on a loop."""

Path = tuple[str | int, ...]
Reasons = Sequence[tuple[str, str]]
"""(pattern, reason): a regular expression over a dotted path with list indices written `[]`
(`spec.strategy.canary.steps[].experiment`), matched in full, and why that field is left out."""


@dataclass(frozen=True)
class Omission:
    """Something of `source` (`Rollout shop/web`) that is not in what `convert` wrote."""

    source: str
    path: str
    """Where in the source object (`spec.strategy.canary.trafficRouting.istio`); empty: all of it."""
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.reason}" if self.path else f"{self.source}: {self.reason}"


def describe(body: Mapping[str, Any]) -> str:
    """`Kind namespace/name` (or `Kind name`) of a manifest, as the omissions name their source."""
    metadata = body.get("metadata") or {}
    name = metadata.get("name", "?")
    namespace = metadata.get("namespace")
    return f"{body.get('kind')} {namespace}/{name}" if namespace else f"{body.get('kind')} {name}"


def dotted(path: Sequence[str | int]) -> str:
    """`("spec", "steps", 0, "pause")` as `spec.steps[0].pause`."""
    return check.field_path([str(part) if isinstance(part, str) else part for part in path])


def reason_for(path: Sequence[str | int], reasons: Reasons, fallback: str) -> str:
    """The written reason for `path`, else `fallback` (the model's message)."""
    general = re.sub(r"\[\d+\]", "[]", dotted(path))
    return next((why for pattern, why in reasons if re.fullmatch(pattern, general)), fallback)


def origins(body: dict[str, Any]) -> dict[int, Path]:
    """Each container of `body` by identity -> its path: taken before a rewrite that removes list
    items (in place), so that what is reported later is named as the source names it."""
    found: dict[int, Path] = {}
    _origins(body, (), found)
    return found


def _origins(node: Any, path: Path, into: dict[int, Path]) -> None:
    """Each container of the object by identity -> its path in the source (removals keep identity)."""
    if isinstance(node, dict):
        into[id(node)] = path
        for key, value in node.items():
            _origins(value, (*path, key), into)
    elif isinstance(node, list):
        into[id(node)] = path
        for index, value in enumerate(node):
            _origins(value, (*path, index), into)


def _deepest(body: Any, location: Sequence[str | int]) -> tuple[Any, str | int] | None:
    """The container and key of the deepest part of `body` along an error's location. Locations
    name union members (`int`, `str`) and missing fields, which the object does not have: the
    walk stops at the last step that exists. None: the error is about the object as a whole."""
    found: tuple[Any, str | int] | None = None
    node = body
    for step in location:
        if _has(node, step):
            found, node = (node, step), node[step]
        # else: a union member's tag or a missing field, the same node one level of the error deeper
    return found


def _has(node: Any, step: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(step, str) and step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def _refusal(body: dict[str, Any], model: type[Model]) -> tuple[Sequence[str | int], str] | None:
    """The first thing `model` refuses in `body` (its location and message), or None."""
    try:
        model.model_validate(body)
    except ValidationError as error:
        detail = error.errors(include_url=False)[0]
        if detail["type"] == "extra_forbidden":
            return detail["loc"], f"not a field of this version's {body.get('kind')}"
        return detail["loc"], detail["msg"]
    kind = str(body.get("kind"))
    if kind in check.KINDS:
        certain = [problem for problem in check.problems(body) if problem.certain]
        if certain:
            return _steps(certain[0].field), certain[0].message
    return None


def _steps(field: str) -> list[str | int]:
    return [int(index) if index else key for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field)]


def fit(
    body: dict[str, Any], reasons: Reasons, source: str, known: dict[int, Path] | None = None
) -> tuple[dict[str, Any] | None, list[Omission]]:
    """`body` (already in our apiVersion) with what its model refuses taken out (in place), and what
    was. `known`: the paths of `origins` taken before earlier rewrites; else taken now.

    None when nothing acceptable is left (the object as a whole is refused). A container emptied by
    the removals is itself refused by the model (a required field, a minimum length) and goes next,
    named by its own path with the reason of the first removal inside it.
    """
    fitted = body
    paths = origins(body) if known is None else known
    omissions: list[Omission] = []
    model = MODELS[str(fitted.get("kind"))]
    for _ in range(_ATTEMPTS):
        refused = _refusal(fitted, model)
        if refused is None:
            return fitted, omissions
        location, message = refused
        found = _deepest(fitted, location)
        if found is None or found[0] is fitted:
            omissions.append(
                Omission(source, "", f"not converted: {location and dotted(location)}: {message}")
            )
            return None, omissions
        container, key = found
        value = container[key]
        parent = paths.get(id(container), ())
        path: Path = (
            paths.get(id(value), (*parent, key)) if isinstance(value, dict | list) else (*parent, key)
        )
        inner = next(
            (o.path for o in omissions if o.path.startswith((f"{dotted(path)}.", f"{dotted(path)}["))), None
        )
        fallback = f"nothing of it is left that maps (first {inner})" if inner else message
        omissions.append(Omission(source, dotted(path), reason_for(path, reasons, fallback)))
        del container[key]
    omissions.append(Omission(source, "", f"not converted: still refused after {_ATTEMPTS} removals"))
    return None, omissions
