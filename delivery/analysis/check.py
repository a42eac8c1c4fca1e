"""What is wrong with an AnalysisTemplate as written, before any Rollout uses it.

The CRD's schema cannot parse a condition or a jinja2 text, so `delivery check FILE...` (in a
pipeline, before `kubectl apply`) says what the controller would otherwise say only in the status
of the first Rollout that uses the template: a condition that does not parse (with its column),
a text that is not valid jinja2, an argument used but never declared (and not one every analysis
gets), and anything the schema refuses.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import ValidationError

from delivery.analysis.expr import check
from delivery.analysis.templates import BUILTIN_ARGS, ENVIRONMENT, with_named_args
from delivery.api.analysis import AnalysisTemplate, ClusterAnalysisTemplate, Metric, TemplateResource

KINDS: dict[str, type[TemplateResource]] = {
    "AnalysisTemplate": AnalysisTemplate,
    "ClusterAnalysisTemplate": ClusterAnalysisTemplate,
}
_USED = re.compile(r"""(?<![\w.])args(?:\.([A-Za-z_][\w-]*)|\[\s*['"]([^'"]+)['"]\s*\])""")


def _texts(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, f"{where}.{key}")


def _metric_problems(metric: Metric, declared: set[str]) -> Iterator[str]:
    for which, source in (
        ("successCondition", metric.success_condition),
        ("failureCondition", metric.failure_condition),
    ):
        problem = check(source) if source else None
        if problem:
            yield f"metric {metric.name}: {which} `{source}`: {problem}"
    provider = metric.provider.model_dump(mode="json", by_alias=True, exclude_none=True)
    for where, text in _texts(provider, f"metric {metric.name}"):
        try:
            ENVIRONMENT.parse(with_named_args(text, declared))
        except jinja2.TemplateSyntaxError as error:
            yield f"{where}: line {error.lineno}: {error.message}"
            continue
        for match in _USED.finditer(text):
            name = match.group(1) or match.group(2)
            # `args.count-1` is the argument count, minus one
            known = name in declared or any(name.startswith(arg + "-") for arg in declared)
            if not known:
                yield f"{where}: argument {name} is not declared in spec.args"


def problems(body: Mapping[str, Any]) -> list[str]:
    """Everything wrong with one AnalysisTemplate or ClusterAnalysisTemplate object."""
    model = KINDS.get(str(body.get("kind")))
    if model is None:
        return [f"not an analysis template: kind {body.get('kind')!r}"]
    try:
        template = model.model_validate(body)
    except ValidationError as error:
        return [f"the schema refuses it: {error}"]
    declared = {argument.name for argument in template.spec.args or ()} | set(BUILTIN_ARGS)
    return [problem for metric in template.spec.metrics for problem in _metric_problems(metric, declared)]


def check_files(paths: Sequence[Path]) -> int:
    """Print the problems of every analysis template in `paths` (other kinds are skipped): 0 if none."""
    found = 0
    for path in paths:
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        except (OSError, yaml.YAMLError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            found += 1
            continue
        for document in documents:
            if document.get("kind") not in KINDS:
                continue
            name = f"{path}: {document['kind']} {(document.get('metadata') or {}).get('name', '?')}"
            for problem in problems(document):
                print(f"{name}: {problem}", file=sys.stderr)
                found += 1
    return 1 if found else 0
