"""`kubectl delivery convert`: Argo Rollouts' and Flagger's manifests (tests/manifests/, written from
their documentation) as ours, each field left out said with its path in the source and why, and
every object written accepted by our models (the models the CRDs are generated from)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery.cli import convert as command
from delivery.cli.convert import EXIT_CONVERTED, EXIT_LEFT_OUT, EXIT_UNREADABLE, convert
from delivery.cli.convert_fit import MODELS, fit
from delivery.cli.convert_flagger import Inputs, _Canary
from delivery.rollout.revision import HASH_LABEL, template_hash

MANIFESTS = Path(__file__).parents[2] / "manifests"
API = "delivery.luojilab.com/v1alpha1"


def _load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def _by(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _left_out(done: command.Conversion, source: str) -> dict[str, str]:
    return {o.path: o.reason for o in done.omissions if o.source == source}


@pytest.fixture(scope="module")
def argo() -> command.Conversion:
    return convert(_load("argo.yaml"))


@pytest.fixture(scope="module")
def flagger() -> command.Conversion:
    return convert(_load("flagger.yaml"))


def test_every_object_written_is_accepted_by_our_models(
    argo: command.Conversion, flagger: command.Conversion
) -> None:
    ours = [o for o in argo.objects + flagger.objects if o["apiVersion"] == API]
    assert len(ours) == 11
    for body in ours:
        MODELS[body["kind"]].model_validate(body)


def test_an_argo_rollout_keeps_its_spec_and_loses_what_the_server_and_argo_wrote(
    argo: command.Conversion,
) -> None:
    web = _by(argo.objects, "Rollout", "web")
    assert web["apiVersion"] == API
    assert "status" not in web
    assert web["metadata"] == {"name": "web", "annotations": {"team": "shop"}, "labels": {"app": "web"}}
    canary = web["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"] == {"gatewayAPI": {"httpRoute": "web"}}
    assert canary["match"] == {"header": "x-canary", "headerValue": "yes"}
    assert canary["maxSurge"] == "25%"
    assert canary["maxUnavailable"] == 0
    assert canary["analysis"]["startingStep"] == 2
    assert canary["analysis"]["args"][1] == {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
    assert canary["steps"] == [
        {"setWeight": 10},
        {"pause": {"duration": 60}},
        {
            "experiment": {
                "duration": "5m",
                "templates": [
                    {"name": "baseline", "specRef": "stable"},
                    {"name": "canary", "specRef": "canary"},
                ],
            }
        },
        {"setWeight": 50},
        {"pause": {"duration": "1h"}},
        {
            "analysis": {
                "templates": [{"templateName": "success-rate"}],
                "args": [{"name": "service", "value": "web-canary"}],
            }
        },
        {"pause": {}},
    ]
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert "paused" not in web["spec"]
    assert "analysis" not in web["spec"]


def test_what_an_argo_rollout_leaves_out_is_named_as_the_source_names_it(argo: command.Conversion) -> None:
    left = _left_out(argo, "Rollout web")
    steps = "spec.strategy.canary.steps"
    assert left[f"{steps}[1].setHeaderRoute"].startswith("written as canary.match")
    assert "mirroring" in left[f"{steps}[4].setMirrorRoute"]
    assert "canary.match" in left["spec.strategy.canary.trafficRouting.managedRoutes"]
    assert "kubectl delivery pause" in left["spec.paused"]
    assert "AnalysisRun" in left["spec.analysis"]
    assert len(left) == 6, left


def test_a_blue_green_rollout_maps_one_to_one(argo: command.Conversion) -> None:
    source = next(d for d in _load("argo.yaml") if d["metadata"]["name"] == "shop")
    shop = _by(argo.objects, "Rollout", "shop")
    assert shop == source | {"apiVersion": API}
    assert _left_out(argo, "Rollout shop") == {}


def test_a_router_we_do_not_have_leaves_a_basic_canary(argo: command.Conversion) -> None:
    mesh = _by(argo.objects, "Rollout", "mesh")
    assert "trafficRouting" not in mesh["spec"]["strategy"]["canary"]
    assert mesh["spec"]["workloadRef"]["scaleDown"] == "progressively"
    left = _left_out(argo, "Rollout mesh")
    assert "nginx or gatewayAPI" in left["spec.strategy.canary.trafficRouting.istio"]


def test_analysis_templates_keep_the_metrics_that_map(argo: command.Conversion) -> None:
    template = _by(argo.objects, "AnalysisTemplate", "success-rate")
    assert [m["name"] for m in template["spec"]["metrics"]] == ["success-rate", "health"]
    rate = template["spec"]["metrics"][0]
    assert rate["count"] == 5
    assert rate["failureLimit"] == 1
    assert "timeout" not in rate["provider"]["prometheus"]
    assert template["spec"]["metrics"][1]["provider"]["web"]["headers"] == [
        {"key": "Authorization", "value": "Bearer {{args.api-token}}"}
    ]
    assert template["spec"]["args"][2]["valueFrom"] == {"secretKeyRef": {"name": "token", "key": "token"}}
    left = _left_out(argo, "AnalysisTemplate success-rate")
    assert set(left) == {
        "spec.metrics[0].provider.prometheus.timeout",
        "spec.metrics[1].provider.datadog",
        "spec.metrics[1].provider",
        "spec.metrics[1]",
    }
    assert "prometheus, web and job" in left["spec.metrics[1].provider.datadog"]
    job = _by(argo.objects, "ClusterAnalysisTemplate", "smoke")
    assert job["spec"]["metrics"][0]["provider"]["job"]["spec"]["backoffLimit"] == 0
    assert _left_out(argo, "ClusterAnalysisTemplate smoke") == {}


def test_analysis_runs_are_not_converted_and_other_kinds_pass_through(argo: command.Conversion) -> None:
    assert not [o for o in argo.objects if o["kind"] == "AnalysisRun"]
    assert "status.analysisHistory" in _left_out(argo, "AnalysisRun web-6d8f7b9c5-3-2")[""]
    assert _by(argo.objects, "Service", "web-stable")["apiVersion"] == "v1"
    assert [o["kind"] for o in argo.objects] == [
        "Rollout",
        "Rollout",
        "Rollout",
        "AnalysisTemplate",
        "ClusterAnalysisTemplate",
        "Service",
    ]


def test_a_condition_our_language_cannot_parse_takes_its_metric_out() -> None:
    template = {
        "apiVersion": API,
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": {
            "metrics": [
                {
                    "name": "ok",
                    "successCondition": "result[0] > 1",
                    "provider": {"prometheus": {"query": "up"}},
                },
                {
                    "name": "bad",
                    "successCondition": "len(result) >",
                    "provider": {"prometheus": {"query": "up"}},
                },
            ]
        },
    }
    fitted, left = fit(template, (), "AnalysisTemplate t")
    assert fitted is not None
    assert [m["name"] for m in fitted["spec"]["metrics"]] == ["ok"]
    assert [o.path for o in left] == ["spec.metrics[1].successCondition", "spec.metrics[1]"]


def test_an_object_with_nothing_that_maps_is_not_written() -> None:
    only = [{"name": "x", "successCondition": "true", "provider": {"newRelic": {"query": "q"}}}]
    done = convert(
        [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisTemplate",
                "metadata": {"name": "nr"},
                "spec": {"metrics": only},
            }
        ]
    )
    assert done.objects == []
    assert done.omissions[-1].path == ""
    assert done.omissions[-1].reason.startswith("not converted: spec")


def test_a_flagger_canary_becomes_a_rollout_over_its_deployment(flagger: command.Conversion) -> None:
    rollout = _by(flagger.objects, "Rollout", "podinfo")
    spec = rollout["spec"]
    assert spec["workloadRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"}
    assert spec["replicas"] == 2  # from the Deployment among the inputs
    assert spec["progressDeadlineSeconds"] == 60
    canary = spec["strategy"]["canary"]
    assert (canary["stableService"], canary["canaryService"]) == ("podinfo", "podinfo-canary")
    assert canary["trafficRouting"] == {"nginx": {"stableIngress": "podinfo"}}
    pause = {"pause": {"duration": "10s"}}
    assert canary["steps"] == [
        {"setWeight": 15},
        pause,
        {"setWeight": 30},
        pause,
        {"setWeight": 45},
        pause,
        {"setWeight": 50},
        pause,
    ]
    assert canary["analysis"] == {"templates": [{"templateName": "podinfo"}]}
    assert [h["name"] for h in spec["hooks"]] == ["acceptance-test", "load-test"]
    assert spec["hooks"][0] == {
        "name": "acceptance-test",
        "type": "pre-rollout",
        "url": "http://flagger-loadtester.test/",
        "timeout": "30s",
        "metadata": {"type": "bash", "cmd": "curl -sd 'test' http://podinfo-canary/token | grep token"},
    }
    assert spec["hooks"][1]["type"] == "rollout"  # Flagger's default type


def test_a_flagger_canary_s_metrics_become_its_analysis_template(flagger: command.Conversion) -> None:
    metrics = _by(flagger.objects, "AnalysisTemplate", "podinfo")["spec"]["metrics"]
    assert [m["name"] for m in metrics] == ["request-success-rate", "request-duration", "latency-p99"]
    rate, duration, latency = metrics
    assert rate["successCondition"] == "result[0] >= 99"
    assert duration["successCondition"] == "result[0] <= 500"
    assert all(m["interval"] == "10s" and m["failureLimit"] == 9 for m in metrics)  # threshold 10
    assert 'ingress="podinfo"' in rate["provider"]["prometheus"]["query"]
    assert "[1m]" in rate["provider"]["prometheus"]["query"]
    assert "[30s]" in duration["provider"]["prometheus"]["query"]
    assert "* 1000" in duration["provider"]["prometheus"]["query"]
    query = latency["provider"]["prometheus"]["query"]
    assert 'namespace="{{args.namespace}}",app="podinfo",path="/api"}[1m]' in query
    assert latency["provider"]["prometheus"]["address"] == "http://prometheus.monitoring:9090"
    left = _left_out(flagger, "Canary podinfo")
    assert "datadog" in left["spec.analysis.metrics[3].templateRef"]
    assert "scaleTargetRef" in left["spec.autoscalerRef"]
    assert "podinfo-canary" in left["spec.service"]
    assert set(left) == {
        "spec.analysis.metrics[3].templateRef",
        "spec.autoscalerRef",
        "spec.service",
        "spec.analysis.webhooks[1].muteAlert",
    }


def test_a_flagger_ab_test_is_a_canary_matching_its_header(flagger: command.Conversion) -> None:
    canary = _by(flagger.objects, "Rollout", "abtest")["spec"]["strategy"]["canary"]
    assert canary["match"] == {"header": "x-canary", "headerValue": "insider"}
    assert canary["steps"] == [{"pause": {"duration": "600s"}}]  # 10 iterations of 1m
    metric = _by(flagger.objects, "AnalysisTemplate", "abtest")["spec"]["metrics"][0]
    assert (metric["count"], metric["failureLimit"]) == (10, 4)
    assert "1 unless you set it" in _left_out(flagger, "Canary abtest")["spec.targetRef"]


def test_a_flagger_blue_green_is_a_blue_green_with_pre_promotion_analysis(
    flagger: command.Conversion,
) -> None:
    strategy = _by(flagger.objects, "Rollout", "bluegreen")["spec"]["strategy"]
    assert strategy == {
        "blueGreen": {
            "activeService": "bluegreen",
            "previewService": "bluegreen-canary",
            "prePromotionAnalysis": {"templates": [{"templateName": "bluegreen"}]},
        }
    }
    metrics = _by(flagger.objects, "AnalysisTemplate", "bluegreen")["spec"]["metrics"]
    assert all(m["count"] == 10 for m in metrics)
    assert (
        'kubernetes_pod_name=~"{{args.rollout}}-{{args.canary-hash}}-[0-9a-zA-Z]+"'
        in metrics[0]["provider"]["prometheus"]["query"]
    )
    assert "spec.provider" not in _left_out(flagger, "Canary bluegreen")  # no router needed


def test_what_a_flagger_canary_cannot_become_is_said(flagger: command.Conversion) -> None:
    assert "DaemonSet" in _left_out(flagger, "Canary daemon")["spec.targetRef"]
    assert not [o for o in flagger.objects if o["metadata"]["name"] == "daemon"]
    assert "no Canary among the inputs uses it" in _left_out(flagger, "MetricTemplate unused")[""]
    assert _left_out(flagger, "MetricTemplate errors-datadog") == {}  # said at the Canary that uses it
    assert not [o for o in flagger.objects if o["kind"] == "MetricTemplate"]


@pytest.mark.parametrize(
    ("analysis", "weights"),
    [
        ({"stepWeight": 20, "maxWeight": 50}, [20, 40, 50]),
        ({"stepWeight": 25, "maxWeight": 50}, [25, 50]),
        ({"stepWeight": 10}, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]),
        ({"stepWeights": [1, 5, 80]}, [1, 5, 80]),
        ({}, []),
    ],
)
def test_flagger_s_weights(analysis: dict[str, Any], weights: list[int]) -> None:
    canary = _Canary({"kind": "Canary", "spec": {"analysis": analysis}}, Inputs(), "Canary c")
    assert canary.weights() == weights


def test_a_metric_template_without_its_canary_s_variables_is_left_out() -> None:
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "t"},
        "spec": {"query": 'x{a="{{ variables.missing }}"}'},
    }
    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "c"},
        "spec": {
            "provider": "nginx",
            "ingressRef": {"name": "c"},
            "targetRef": {"kind": "Deployment", "name": "c"},
            "analysis": {
                "interval": "1m",
                "stepWeight": 50,
                "metrics": [{"name": "t", "templateRef": {"name": "t"}, "thresholdRange": {"min": 1}}],
            },
        },
    }
    done = convert([template, canary])
    assert [o["kind"] for o in done.objects] == ["Rollout"]
    assert "analysis" not in done.objects[0]["spec"]["strategy"]["canary"]
    assert "variables.missing" in _left_out(done, "Canary c")["spec.analysis.metrics[0]"]


def test_our_own_output_converts_to_itself(argo: command.Conversion, flagger: command.Conversion) -> None:
    again = convert(argo.objects + flagger.objects)
    assert again.objects == argo.objects + flagger.objects
    assert again.omissions == []


def test_the_command_s_output_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run([MANIFESTS / "argo.yaml"], "yaml") == EXIT_LEFT_OUT
    out, err = capsys.readouterr()
    written = list(yaml.safe_load_all(out))
    assert [o["kind"] for o in written][:3] == ["Rollout", "Rollout", "Rollout"]
    assert "&id" not in out  # each value written out, no YAML anchors
    assert "left out: Rollout web: spec.paused: pausing is a command here" in err
    clean = tmp_path / "clean.yaml"
    clean.write_text(yaml.safe_dump(_load("argo.yaml")[1]))
    assert command.run([clean], "json") == EXIT_CONVERTED
    out, err = capsys.readouterr()
    assert json.loads(out)["items"][0]["apiVersion"] == API
    assert err == ""
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": [_load("argo.yaml")[1]]})
    assert command.run([Path("-")], "yaml", stdin=io.StringIO(listed)) == EXIT_CONVERTED
    assert yaml.safe_load(capsys.readouterr().out)["metadata"]["name"] == "shop"
    assert command.run([tmp_path / "missing.yaml"], "yaml") == EXIT_UNREADABLE
    assert "missing.yaml" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("a: [")
    assert command.run([tmp_path / "bad.yaml"], "yaml") == EXIT_UNREADABLE


def test_revisions_name_the_label_a_taken_over_pod_needs(capsys: pytest.CaptureFixture[str]) -> None:
    rollout = _load("argo.yaml")[1]
    assert command.run([MANIFESTS / "argo.yaml"], "yaml", only_revisions=True) == EXIT_LEFT_OUT
    lines = capsys.readouterr().out.splitlines()
    expected = template_hash(rollout["spec"]["template"])
    assert lines[1] == f"shop {HASH_LABEL}={expected}"
    assert [line.split()[0] for line in lines] == ["web", "shop"]  # mesh takes its template from a Deployment


def test_a_gateway_api_canary_keeps_flagger_s_route_and_backends() -> None:
    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "gw"},
        "spec": {
            "provider": "gatewayapi:v1",
            "targetRef": {"kind": "Deployment", "name": "gw"},
            "service": {"name": "front", "port": 80},
            "analysis": {"interval": "1m", "stepWeights": [10, 60]},
        },
    }
    strategy = convert([canary]).objects[0]["spec"]["strategy"]["canary"]
    assert strategy["trafficRouting"] == {"gatewayAPI": {"httpRoute": "front"}}
    assert (strategy["stableService"], strategy["canaryService"]) == ("front-primary", "front-canary")
    assert [step.get("setWeight") for step in strategy["steps"]] == [10, None, 60, None]
