"""AnalysisTemplates by reference: found, checked, and their text filled in from the arguments.

Templates are written by whoever may write one, so their text runs only in jinja2's immutable
sandbox (no attribute of Python's internals, no changing the arguments) with StrictUndefined: an
argument that has no value is an error that names it, never an empty string spliced into a query.
A template that is missing, invalid, or whose conditions do not parse is a `TemplateProblem`: the
release pauses and its status says what to fix.

Arguments take their value from, in order: the Rollout's `args`, the template's default, and the
values every analysis gets for free: `namespace`, `rollout`, `canary-hash`, `stable-hash`, and the
Services the strategy names (`stable-service`, `canary-service`, `active-service`,
`preview-service`). Argument names may contain dashes, so `{{args.canary-hash}}` reads the argument
`canary-hash` (jinja2 alone would subtract `hash` from `args.canary`).

The texts of one metric render together in a worker process, within `templating_budget`'s time
and output budgets: a template that loops or writes without end is a TemplateProblem that says
which budget it exceeded, and the controller's loop never waits on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from pydantic import ValidationError

from delivery import templating_budget
from delivery.analysis.expr import check
from delivery.api.analysis import AnalysisTemplateSpec, Metric

SYNTAX = templating_budget.Syntax(immutable=True)
ENVIRONMENT = SYNTAX.environment()
"""For parsing (`delivery check`); rendering happens in a worker, with the same syntax."""
BUILTIN_ARGS = (
    "namespace",
    "rollout",
    "canary-hash",
    "stable-hash",
    "stable-service",
    "canary-service",
    "active-service",
    "preview-service",
)
_MISSING_ATTRIBUTE = re.compile(r"has no attribute '([^']+)'")


class TemplateProblem(ValueError):
    """The analysis cannot run as written: said in the status, retried until it is fixed."""


@dataclass(frozen=True)
class Found:
    """A template as read from the cluster; `body` is None when it does not exist."""

    name: str
    cluster_scope: bool
    body: Mapping[str, Any] | None

    @property
    def described(self) -> str:
        return f"{'ClusterAnalysisTemplate' if self.cluster_scope else 'AnalysisTemplate'} {self.name}"


def builtin_args(
    namespace: str, rollout: str, canary: str, stable: str, services: Mapping[str, str]
) -> dict[str, str]:
    """The arguments every analysis may use unasked; `services` by role (stable, canary, ...)."""
    named = {f"{role}-service": name for role, name in services.items()}
    found = {
        "namespace": namespace,
        "rollout": rollout,
        "canary-hash": canary,
        "stable-hash": stable,
        **named,
    }
    return {name: found[name] for name in BUILTIN_ARGS if name in found}


def with_named_args(text: str, names: Iterable[str]) -> str:
    """`text` with `args.canary-hash` written `args['canary-hash']`, for each of `names` that is
    not a Python name (longest first, so `args.a-b-c` is not read as `args.a-b` minus c)."""
    for name in sorted((n for n in names if not n.isidentifier()), key=len, reverse=True):
        text = re.sub(rf"(?<![\w.])args\.{re.escape(name)}(?![-\w])", f"args[{name!r}]", text)
    return text


def render_all(texts: Mapping[str, str], args: Mapping[str, str], where: str) -> dict[str, str]:
    """`texts` (by where each is) with their `{{args.x}}` filled in, in the sandbox, in one worker
    round trip; `where` names them all in a budget's message."""
    job = templating_budget.Job(
        SYNTAX,
        {at: with_named_args(text, args) for at, text in texts.items()},
        list(texts),
        {"args": dict(args)},
    )
    try:
        return dict(zip(texts, templating_budget.POOL.render(job), strict=True))
    except templating_budget.BudgetExceeded as error:
        raise TemplateProblem(f"{where}: {error}") from error
    except templating_budget.Failed as failed:
        if isinstance(failed.error, jinja2.UndefinedError):
            missing = _MISSING_ATTRIBUTE.search(str(failed.error))
            what = f"argument {missing.group(1)} has no value" if missing else str(failed.error)
            raise TemplateProblem(f"{failed.name}: {what}") from failed
        raise TemplateProblem(str(failed)) from failed


def render(text: str, args: Mapping[str, str], where: str) -> str:
    """`text` with its `{{args.x}}` filled in, in the sandbox."""
    return render_all({where: text}, args, where)[where]


def _texts(value: Any, where: str, found: dict[str, str]) -> None:
    """Every text of `value` into `found`, by where it is."""
    if isinstance(value, str):
        found[where] = value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _texts(item, f"{where}[{index}]", found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _texts(item, f"{where}.{key}", found)


def _filled(value: Any, where: str, rendered: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return rendered[where]
    if isinstance(value, list):
        return [_filled(item, f"{where}[{index}]", rendered) for index, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _filled(item, f"{where}.{key}", rendered) for key, item in value.items()}
    return value


def _rendered(value: Any, args: Mapping[str, str], where: str) -> Any:
    texts: dict[str, str] = {}
    _texts(value, where, texts)
    return _filled(value, where, render_all(texts, args, where) if texts else {})


def _spec(found: Found) -> AnalysisTemplateSpec:
    if found.body is None:
        raise TemplateProblem(f"{found.described} not found")
    try:
        return AnalysisTemplateSpec.model_validate(found.body.get("spec") or {})
    except ValidationError as error:
        raise TemplateProblem(f"{found.described} is invalid: {error}") from error


def _arguments(
    found: Found, spec: AnalysisTemplateSpec, given: Mapping[str, str], builtin: Mapping[str, str]
) -> dict[str, str]:
    values = {**builtin}
    for argument in spec.args or ():
        value = given.get(argument.name, argument.value)
        if value is None:
            value = builtin.get(argument.name)
        if value is None:
            raise TemplateProblem(
                f"{found.described}: argument {argument.name} has no value "
                "(give it in the Rollout's analysis args)"
            )
        values[argument.name] = value
    return {**values, **given}


def resolve(
    templates: Sequence[Found], given: Mapping[str, str], builtin: Mapping[str, str]
) -> dict[str, Metric]:
    """The metrics of `templates`, by name, with every text filled in; TemplateProblem otherwise."""
    metrics: dict[str, Metric] = {}
    for found in templates:
        spec = _spec(found)
        args = _arguments(found, spec, given, builtin)
        for metric in spec.metrics:
            where = f"{found.described} metric {metric.name}"
            if metric.name in metrics:
                raise TemplateProblem(
                    f"{where}: another template of the same analysis has a metric of that name"
                )
            for which, source in (
                ("successCondition", metric.success_condition),
                ("failureCondition", metric.failure_condition),
            ):
                problem = check(source) if source else None
                if problem:
                    raise TemplateProblem(f"{where}: {which} `{source}`: {problem}")
            provider = _rendered(
                metric.provider.model_dump(mode="json", by_alias=True, exclude_none=True), args, where
            )
            try:
                filled = type(metric.provider).model_validate(provider)
            except ValidationError as error:  # an argument made it invalid (a URL that is not one)
                raise TemplateProblem(f"{where}, its arguments filled in: {error}") from error
            metrics[metric.name] = metric.model_copy(update={"provider": filled})
    return metrics
