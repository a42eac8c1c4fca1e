"""What is wrong with an AnalysisTemplate as written, before any Rollout uses it.

The CRD's schema cannot parse a condition or a jinja2 text, so two places say what the controller
would otherwise say only in the status of the first Rollout that uses the template: `delivery
check FILE...` (in a pipeline, before `kubectl apply`) and the validating admission webhook
(`delivery.webhook`, at `kubectl apply`). Both read the same `Problem`s: a condition that does
not parse or names what the language does not have (with its column), a text that is not valid
jinja2 (with its line: jinja2 counts no columns), an argument used but never declared (and not
one every analysis gets), and anything the models refuse. Each is placed by its field path, as
the apiserver names the fields its schema refuses (`spec.metrics[0].successCondition`).

Texts are parsed here, never rendered: rendering untrusted jinja2 happens only in
`templating_budget`'s workers, within their budget.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Problem:
    """One thing wrong, at `field` (a path into the object: `spec.metrics[0].successCondition`).

    `certain`: the template cannot work as written (the webhook refuses it). An argument used but
    not declared is not certain: a Rollout that gives it makes it work, so it is a warning at
    apply (and still a failure of `delivery check`, which asks for templates that declare)."""

    field: str
    message: str
    certain: bool = True

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def field_path(location: Sequence[str | int]) -> str:
    """`("spec", "metrics", 0, "name")` as the apiserver writes it: `spec.metrics[0].name`."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _texts(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, f"{where}.{key}")


def _template_problem(text: str, declared: set[str]) -> str | None:
    """Why `text` is not a jinja2 template, or None: parsed with the syntax it renders with."""
    try:
        ENVIRONMENT.parse(with_named_args(text, declared))
    except jinja2.TemplateSyntaxError as error:
        return f"line {error.lineno}: {error.message}"
    except RecursionError:  # jinja2's parser recurses per nesting level
        return "nested too deeply to parse"
    return None


def _metric_problems(metric: Metric, where: str, declared: set[str]) -> Iterator[Problem]:
    for which, source in (
        ("successCondition", metric.success_condition),
        ("failureCondition", metric.failure_condition),
    ):
        problem = check(source) if source else None
        if problem:
            yield Problem(f"{where}.{which}", problem)
    provider = metric.provider.model_dump(mode="json", by_alias=True, exclude_none=True)
    for at, text in _texts(provider, f"{where}.provider"):
        problem = _template_problem(text, declared)
        if problem:
            yield Problem(at, problem)
            continue
        for match in _USED.finditer(text):
            name = match.group(1) or match.group(2)
            # `args.count-1` is the argument count, minus one
            known = name in declared or any(name.startswith(arg + "-") for arg in declared)
            if not known:
                yield Problem(at, f"argument {name} is not declared in spec.args", certain=False)


def problems(body: Mapping[str, Any]) -> list[Problem]:
    """Everything wrong with one AnalysisTemplate or ClusterAnalysisTemplate object."""
    model = KINDS.get(str(body.get("kind")))
    if model is None:
        return [Problem("kind", f"not an analysis template: {body.get('kind')!r}")]
    try:
        template = model.model_validate(body)
    except ValidationError as error:
        return [Problem(field_path(e["loc"]), e["msg"]) for e in error.errors(include_url=False)]
    declared = {argument.name for argument in template.spec.args or ()} | set(BUILTIN_ARGS)
    return [
        problem
        for index, metric in enumerate(template.spec.metrics)
        for problem in _metric_problems(metric, f"spec.metrics[{index}]", declared)
    ]


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
