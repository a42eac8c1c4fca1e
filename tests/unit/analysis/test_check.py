"""`delivery check`: an AnalysisTemplate's problems said before it is applied, with where they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery.analysis.check import check_files, problems
from delivery.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def template(*metrics: dict[str, Any], args: list[str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": {"args": [{"name": name} for name in args or ()], "metrics": list(metrics)},
    }


def prometheus(query: str, condition: str = "result[0] < 1") -> dict[str, Any]:
    return {"name": "m", "successCondition": condition, "provider": {"prometheus": {"query": query}}}


def test_the_examples_have_no_problems() -> None:
    assert check_files(sorted(EXAMPLES.glob("*analysis*.yaml"))) == 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (template(prometheus("up", "result[0] <")), "spec.metrics[0].successCondition: column 12: "),
        (template(prometheus("up", "median(result) < 1")), "column 1: unknown name 'median'"),
        (template(prometheus("up{job='{{args.job'}")), "spec.metrics[0].provider.prometheus.query: line 1: "),
        (template(prometheus("up{job='{{args.job}}'}")), "argument job is not declared in spec.args"),
        (template(prometheus('up{job="{{ args["job"] }}"}')), "argument job is not declared"),
        ({**template(prometheus("up")), "kind": "Rollout"}, "kind: not an analysis template"),
        (template(), "spec.metrics: Value should have at least 1 item"),
    ],
)
def test_problems_are_found_and_placed(body: dict[str, Any], problem: str) -> None:
    assert any(problem in str(found) for found in problems(body)), problems(body)


@pytest.mark.parametrize(
    "query",
    [
        "up{job='{{args.job}}'}",
        "up{rev='{{args.canary-hash}}',ns='{{ args.namespace }}'}",  # given to every analysis
        "up offset {{args.count-1}}m",  # the argument count, minus one
    ],
)
def test_declared_and_builtin_arguments_are_fine(query: str) -> None:
    assert problems(template(prometheus(query), args=["job", "count"])) == []


def test_the_command_says_which_file_and_template_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text(
        yaml.safe_dump_all(
            [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "skipped"}},
                template(prometheus("up", "result[0] <<< 1")),
            ]
        )
    )
    assert main(["check", str(path)]) == 1
    said = capsys.readouterr().err
    # The line is the field's own (issue 16 added file:line to the message).
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "successCondition:" in text)
    assert said.startswith(
        f"{path}:{line}: AnalysisTemplate t: spec.metrics[0].successCondition: column 12: "
    )
