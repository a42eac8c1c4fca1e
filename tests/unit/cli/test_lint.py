"""`kubectl delivery lint` / `delivery check`: each problem of a Rollout, Component or analysis
template with its file and line, exit 1; the examples have none."""

from __future__ import annotations

from pathlib import Path

import pytest

from delivery.cli.lint import lint_files

EXAMPLES = Path(__file__).parents[3] / "examples"
BROKEN = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: skipped}
---
apiVersion: delivery.luojilab.com/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}}
  strategy:
    canary:
      steps:
      - setWeight: 120
      - pause: {}
        setWeight: 5
---
apiVersion: component.luojilab.com/v1beta1
kind: Component
metadata: {name: api}
spec:
  workloadType: Deployment
  developLanguage: go
  runType: server
  image: api:1
  replicas: "3"
---
apiVersion: delivery.luojilab.com/v1beta9
kind: Rollout
metadata: {name: future}
---
apiVersion: delivery.luojilab.com/v1alpha1
kind: AnalysisTemplate
metadata: {name: broken}
spec:
  metrics:
  - name: fine
    successCondition: result[0] < 1
    provider: {prometheus: {query: up}}
  - name: latency
    successCondition: result[0] <
    provider: {prometheus: {query: up}}
"""


def test_the_examples_have_no_problems(capsys: pytest.CaptureFixture[str]) -> None:
    assert lint_files(sorted(EXAMPLES.glob("*.yaml"))) == 0
    assert "rollout-canary-analysis.yaml: 2 checked, no problems" in capsys.readouterr().out


def test_each_problem_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    assert lint_files([path]) == 1
    said = capsys.readouterr().err.splitlines()
    step = "spec.strategy.canary.steps[0].setWeight"
    assert f"{path}:14: Rollout web: {step}: Input should be less than or equal to 100" in said
    assert any(
        line.startswith(f"{path}:15: Rollout web: spec.strategy.canary.steps[1]: exactly one of")
        for line in said
    )
    assert any(line.startswith(f"{path}:26: Component api: spec.replicas: ") for line in said)
    group = "delivery.luojilab.com"
    assert f"{path}:28: Rollout future: apiVersion {group}/v1beta9: served are {group}/v1alpha1" in said
    assert any(
        line.startswith(f"{path}:41: AnalysisTemplate broken: spec.metrics[1].successCondition: column")
        for line in said
    )
    assert len(said) == 5


def test_a_file_that_is_not_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: [")
    assert lint_files([path]) == 1
    assert capsys.readouterr().err.startswith(f"{path}: ")
