"""`delivery check` / `kubectl delivery lint FILE...`: what is wrong with the objects in YAML files
before they are applied, each problem with its file and line.

Rollouts and Components are read by the API models that generate their CRDs, so what the schema or
a CEL rule would refuse at `kubectl apply` is said here first (the models check each rule too);
AnalysisTemplates get `delivery.analysis.check` (conditions, jinja2, arguments), which the schema
cannot do. Other kinds are skipped. Exit 1 when anything was found.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from delivery.analysis import check
from delivery.api import CUSTOM_RESOURCES
from delivery.api.common import Model

MODELS: dict[tuple[str, str], type[Model]] = {
    (f"{resource.group}/{version.name}", resource.kind): version.model
    for resource in CUSTOM_RESOURCES
    for version in resource.versions
    if resource.kind not in check.KINDS
}
KINDS = {kind for _version, kind in MODELS} | set(check.KINDS)


@dataclass(frozen=True)
class Problem:
    line: int
    text: str


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _at(node: yaml.Node, path: Sequence[Any]) -> int:
    """The line of the deepest node along `path` (keys and indices) that the document has."""
    line = _line(node)
    for step in path:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == step), None)
            if found is None:
                break
            line, node = _line(found[0]), found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            node = node.value[step]
            line = _line(node)
        else:
            break
    return line


def _dotted(path: Sequence[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _steps(field: str) -> list[str | int]:
    """The keys and indices of a `delivery.analysis.check` field path (`spec.metrics[0].successCondition`)."""
    return [int(index) if index else key for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field)]


def problems(document: dict[str, Any], node: yaml.Node) -> list[Problem]:
    """Everything wrong with one object of a kind we lint, each at its line."""
    kind = str(document.get("kind"))
    if kind in check.KINDS:
        return [Problem(_at(node, _steps(found.field)), str(found)) for found in check.problems(document)]
    model = MODELS.get((str(document.get("apiVersion")), kind))
    if model is None:
        served = ", ".join(sorted(version for version, known in MODELS if known == kind))
        return [
            Problem(
                _at(node, ("apiVersion",)), f"apiVersion {document.get('apiVersion')}: served are {served}"
            )
        ]
    try:
        model.model_validate(document)
    except ValidationError as error:
        return [
            Problem(_at(node, detail["loc"]), f"{_dotted(detail['loc']) or 'the object'}: {detail['msg']}")
            for detail in error.errors()
        ]
    return []


def _documents(text: str) -> Iterator[tuple[Any, yaml.Node]]:
    """Each YAML document with its node (for the lines)."""
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield loader.construct_document(node), node
    finally:
        loader.dispose()


def lint_files(paths: Sequence[Path]) -> int:
    """Print `FILE:LINE: KIND NAME: PROBLEM` for each problem (stderr), a summary per clean file
    (stdout); 0 if nothing was found, else 1."""
    found = 0
    for path in paths:
        checked, before = 0, found
        try:
            documents = list(_documents(path.read_text()))
        except (OSError, yaml.YAMLError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            found += 1
            continue
        for document, node in documents:
            if not isinstance(document, dict) or document.get("kind") not in KINDS:
                continue
            checked += 1
            name = (document.get("metadata") or {}).get("name", "?")
            for problem in problems(document, node):
                print(f"{path}:{problem.line}: {document['kind']} {name}: {problem.text}", file=sys.stderr)
                found += 1
        if checked and found == before:
            print(f"{path}: {checked} checked, no problems")
    return 1 if found else 0
