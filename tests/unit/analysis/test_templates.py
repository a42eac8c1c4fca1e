"""Templates by reference: arguments filled in a sandbox, and every problem said, never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.analysis.templates import Found, TemplateProblem, render, resolve

BUILTIN = {"namespace": "shop", "rollout": "web", "canary-hash": "abc123", "stable-hash": "def456"}


def template(metrics: list[dict[str, Any]], args: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"spec": {"metrics": metrics, **({"args": args} if args is not None else {})}}


ERROR_RATE = {
    "name": "error-rate",
    "interval": "10s",
    "count": 3,
    "successCondition": "result[0] < 0.05",
    "provider": {
        "prometheus": {
            "address": "{{args.prometheus}}",
            "query": 'sum(rate(errors{service="{{args.service}}",rev="{{args.canary-hash}}"}[1m]))',
        }
    },
}


def test_arguments_come_from_the_rollout_then_the_template_then_the_builtins() -> None:
    found = Found(
        "errors",
        False,
        template([ERROR_RATE], [{"name": "service", "value": "default"}, {"name": "prometheus"}]),
    )
    metrics = resolve([found], {"prometheus": "http://prom:9090"}, BUILTIN)
    prometheus = metrics["error-rate"].provider.prometheus
    assert prometheus is not None
    assert prometheus.address == "http://prom:9090"
    assert prometheus.query == 'sum(rate(errors{service="default",rev="abc123"}[1m]))'
    overridden = resolve([found], {"prometheus": "p", "service": "cart"}, BUILTIN)["error-rate"].provider
    assert overridden.prometheus is not None
    assert 'service="cart"' in overridden.prometheus.query


@pytest.mark.parametrize(
    ("found", "given", "problem"),
    [
        (Found("errors", False, None), {}, "AnalysisTemplate errors not found"),
        (Found("errors", True, None), {}, "ClusterAnalysisTemplate errors not found"),
        (
            Found("errors", False, template([ERROR_RATE], [{"name": "prometheus"}])),
            {},
            "argument prometheus has no value (give it in the Rollout's analysis args)",
        ),
        (
            Found("errors", False, template([ERROR_RATE])),
            {"prometheus": "p"},
            "metric error-rate.prometheus.query: argument service has no value",
        ),
        (
            Found("errors", False, template([{**ERROR_RATE, "successCondition": "result[0] <"}])),
            {"prometheus": "p", "service": "s"},
            "successCondition `result[0] <`: column",
        ),
        (
            Found("errors", False, template([ERROR_RATE, ERROR_RATE])),
            {"prometheus": "p", "service": "s"},
            "is invalid",  # the model refuses two metrics of one name
        ),
        (
            Found("errors", False, {"spec": {"metrics": []}}),
            {},
            "AnalysisTemplate errors is invalid",
        ),
    ],
)
def test_problems_are_said(found: Found, given: dict[str, str], problem: str) -> None:
    with pytest.raises(TemplateProblem) as raised:
        resolve([found], given, BUILTIN)
    assert problem in str(raised.value)


def test_two_templates_may_not_share_a_metric_name() -> None:
    one = Found("a", False, template([ERROR_RATE]))
    two = Found("b", False, template([ERROR_RATE]))
    with pytest.raises(TemplateProblem, match="another template of the same analysis"):
        resolve([one, two], {"prometheus": "p", "service": "s"}, BUILTIN)


@pytest.mark.parametrize(
    "source",
    [
        "{{ args.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ args.pop('namespace') }}",
    ],
)
def test_the_sandbox_refuses_to_reach_python(source: str) -> None:
    with pytest.raises(TemplateProblem):
        render(source, BUILTIN, "query")


def test_dashes_in_argument_names_are_names_not_subtraction() -> None:
    assert render("{{args.canary-hash}}/{{ args['stable-hash'] }}", BUILTIN, "q") == "abc123/def456"
    assert render("{{args.namespace}}-x", BUILTIN, "q") == "shop-x"


def test_an_argument_that_makes_the_metric_invalid_is_a_problem_not_a_crash() -> None:
    web = {
        "name": "health",
        "successCondition": "result == true",
        "provider": {"web": {"url": "{{args.base}}/health"}},
    }
    with pytest.raises(TemplateProblem, match="its arguments filled in"):
        resolve([Found("health", False, template([web]))], {"base": "not-a-url"}, BUILTIN)
