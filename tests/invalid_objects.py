"""Objects the API must refuse, in one table: each case names the field that the refusal names.

Every case is a valid base object with one thing wrong, so a case that passes cannot pass for
another reason. The unit tests check that the models refuse each case; the integration tests
`kubectl apply` each against a real apiserver, which must refuse it with a message containing
`field` (the CRD's schema and CEL rules, not the models, are what refuses it there).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]
REMOVE = object()
"""A value for `changed` that deletes the field instead."""


@dataclass(frozen=True)
class Invalid:
    id: str  # also the object's name, so cluster-scoped cases do not collide
    manifest: Manifest
    field: str  # the path the refusal names, as the apiserver prints it


def changed(base: Manifest, changes: dict[str, Any]) -> Manifest:
    """A copy of `base` with each dotted path (`spec.steps[0].pause`) set to its value, or removed."""
    result = copy.deepcopy(base)
    for path, value in changes.items():
        keys: list[str | int] = [
            int(index) if index else name for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)
        ]
        owner: Any = result
        for key in keys[:-1]:
            owner = owner[key]
        if value is REMOVE:
            del owner[keys[-1]]
        else:
            owner[keys[-1]] = copy.deepcopy(value)
    return result


COMPONENT_V1ALPHA1: Manifest = {
    "apiVersion": "component.luojilab.com/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "base"},
    "spec": {
        "workloadType": "Deployment",
        "developLanguage": "python",
        "runType": "server",
        "image": "python-demo:latest",
        "port": 8080,
    },
}
COMPONENT_V1BETA1: Manifest = {**COMPONENT_V1ALPHA1, "apiVersion": "component.luojilab.com/v1beta1"}
ROLLOUT: Manifest = {
    "apiVersion": "delivery.luojilab.com/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "base"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        },
        "strategy": {
            "canary": {
                "canaryService": "web-canary",
                "stableService": "web",
                "trafficRouting": {"nginx": {"stableIngress": "web"}},
                "steps": [
                    {"setWeight": 20},
                    {"pause": {"duration": "1m"}},
                    {"analysis": {"templates": [{"templateName": "error-rate"}]}},
                ],
            }
        },
    },
}
ROLLING: Manifest = changed(ROLLOUT, {"spec.strategy": {"rolling": {"maxSurge": 1, "maxUnavailable": 0}}})
BLUE_GREEN: Manifest = changed(
    ROLLOUT, {"spec.strategy": {"blueGreen": {"activeService": "web", "previewService": "web-preview"}}}
)
ANALYSIS_TEMPLATE: Manifest = {
    "apiVersion": "delivery.luojilab.com/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "base"},
    "spec": {
        "args": [{"name": "service"}],
        "metrics": [
            {
                "name": "error-rate",
                "provider": {"prometheus": {"query": 'sum(rate(errors{service="{{args.service}}"}[1m]))'}},
                "interval": "1m",
                "count": 3,
                "successCondition": "result[0] < 0.01",
            }
        ],
    },
}
JUDGE: Manifest = changed(
    ANALYSIS_TEMPLATE,
    {
        "spec.metrics[0].provider": {
            "judge": {"canaryQuery": "latency{rev='c'}", "stableQuery": "latency{rev='s'}"}
        },
        "spec.metrics[0].successCondition": REMOVE,
    },
)
CLUSTER_ANALYSIS_TEMPLATE: Manifest = {
    "apiVersion": "delivery.luojilab.com/v1alpha1",
    "kind": "ClusterAnalysisTemplate",
    "metadata": {"name": "base"},
    "spec": {
        "metrics": [
            {
                "name": "healthy",
                "provider": {
                    "web": {
                        "url": "http://web.default.svc/health",
                        "headers": [{"name": "Accept", "value": "application/json"}],
                        "jsonPath": "{$.status}",
                    }
                },
                "successCondition": 'result == "ok"',
            }
        ]
    },
}
CLUSTER_PROFILE: Manifest = {
    "apiVersion": "component.luojilab.com/v1beta1",
    "kind": "ClusterProfile",
    "metadata": {"name": "base"},
    "spec": {"ingressClass": "nginx", "tolerations": [{"key": "dedicated", "value": "apps"}]},
}

VALID_BASES: tuple[Manifest, ...] = (
    COMPONENT_V1ALPHA1,
    COMPONENT_V1BETA1,
    ROLLOUT,
    ROLLING,
    BLUE_GREEN,
    ANALYSIS_TEMPLATE,
    JUDGE,
    CLUSTER_ANALYSIS_TEMPLATE,
    CLUSTER_PROFILE,
)
"""The bases themselves are valid (a test checks it), so each case is refused for its one change."""

_STEPS = "spec.strategy.canary.steps"
_METRIC = "spec.metrics[0]"


def _case(case_id: str, base: Manifest, changes: dict[str, Any], field: str) -> Invalid:
    return Invalid(case_id, changed(base, {**changes, "metadata.name": case_id}), field)


INVALID_OBJECTS: tuple[Invalid, ...] = (
    # Component
    _case("component-missing-image", COMPONENT_V1ALPHA1, {"spec.image": REMOVE}, "spec.image"),
    _case("component-image-with-space", COMPONENT_V1ALPHA1, {"spec.image": "python demo"}, "spec.image"),
    _case("component-port-zero", COMPONENT_V1ALPHA1, {"spec.port": 0}, "spec.port"),
    _case("component-port-over-65535", COMPONENT_V1ALPHA1, {"spec.port": 70000}, "spec.port"),
    _case("component-port-as-string", COMPONENT_V1ALPHA1, {"spec.port": "8080"}, "spec.port"),
    _case("component-server-without-port", COMPONENT_V1ALPHA1, {"spec.port": REMOVE}, "spec.port"),
    _case(
        "component-unknown-workload-type",
        COMPONENT_V1ALPHA1,
        {"spec.workloadType": "Pod"},
        "spec.workloadType",
    ),
    _case(
        "component-unknown-language",
        COMPONENT_V1ALPHA1,
        {"spec.developLanguage": "cobol"},
        "spec.developLanguage",
    ),
    _case("component-negative-replicas", COMPONENT_V1BETA1, {"spec.replicas": -1}, "spec.replicas"),
    _case(
        "component-v1alpha1-luoji-slb",
        COMPONENT_V1ALPHA1,
        {"spec.svc": {"type": "luoji-slb"}},
        "spec.svc.type",
    ),
    _case(
        "component-v1beta1-aliyun-slb",
        COMPONENT_V1BETA1,
        {"spec.svc": {"type": "aliyun-slb"}},
        "spec.svc.type",
    ),
    _case(
        "component-node-port-on-cluster-ip",
        COMPONENT_V1BETA1,
        {"spec.svc": {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30080}]}},
        "spec.svc.ports",
    ),
    _case(
        "component-v1alpha1-has-no-release",
        COMPONENT_V1ALPHA1,
        {"spec.release": {"strategy": "rolling"}},
        "spec.release",
    ),
    _case(
        "component-release-block-of-another-strategy",
        COMPONENT_V1BETA1,
        {"spec.release": {"strategy": "rolling", "canary": {"steps": [{"setWeight": 10}]}}},
        "spec.release",
    ),
    _case(
        "component-override-with-two-patches",
        COMPONENT_V1BETA1,
        {
            "spec.overrides": [
                {
                    "kind": "Deployment",
                    "strategicMerge": {"spec": {"paused": True}},
                    "jsonPatch": [{"op": "remove", "path": "/spec/paused"}],
                }
            ]
        },
        "spec.overrides[0]",
    ),
    _case(
        "component-env-value-and-value-from",
        COMPONENT_V1BETA1,
        {
            "spec.env": [
                {"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
            ]
        },
        "spec.env[0]",
    ),
    _case(
        "component-autoscaling-min-above-max",
        COMPONENT_V1ALPHA1,
        {"spec.autoscaling": {"minReplicas": 5, "maxReplicas": 3, "cpuUtilization": 70}},
        "spec.autoscaling.minReplicas",
    ),
    _case(
        "component-autoscaling-min-zero",
        COMPONENT_V1BETA1,
        {"spec.autoscaling": {"minReplicas": 0, "maxReplicas": 3, "cpuUtilization": 70}},
        "spec.autoscaling.minReplicas",
    ),
    _case(
        "component-autoscaling-without-target",
        COMPONENT_V1BETA1,
        {"spec.autoscaling": {"maxReplicas": 3}},
        "spec.autoscaling",
    ),
    _case(
        "component-autoscaling-and-replicas",
        COMPONENT_V1ALPHA1,
        {"spec.replicas": 2, "spec.autoscaling": {"maxReplicas": 3, "memoryUtilization": 80}},
        "spec.autoscaling",
    ),
    _case(
        "component-autoscaling-a-daemonset",
        COMPONENT_V1BETA1,
        {"spec.workloadType": "DaemonSet", "spec.autoscaling": {"maxReplicas": 3, "cpuUtilization": 70}},
        "spec.autoscaling",
    ),
    # Rollout
    _case(
        "rollout-two-strategies",
        ROLLOUT,
        {"spec.strategy.rolling": {"maxSurge": 1}},
        "spec.strategy",
    ),
    _case("rollout-no-strategy", ROLLOUT, {"spec.strategy": {}}, "spec.strategy"),
    _case("rollout-negative-weight", ROLLOUT, {f"{_STEPS}[0].setWeight": -10}, f"{_STEPS}[0].setWeight"),
    _case("rollout-weight-over-100", ROLLOUT, {f"{_STEPS}[0].setWeight": 150}, f"{_STEPS}[0].setWeight"),
    _case("rollout-empty-step", ROLLOUT, {f"{_STEPS}[0]": {}}, f"{_STEPS}[0]"),
    _case(
        "rollout-step-with-two-actions",
        ROLLOUT,
        {f"{_STEPS}[0]": {"setWeight": 10, "pause": {}}},
        f"{_STEPS}[0]",
    ),
    _case(
        "rollout-pause-in-words",
        ROLLOUT,
        {f"{_STEPS}[1].pause.duration": "5 minutes"},
        f"{_STEPS}[1].pause.duration",
    ),
    _case(
        "rollout-negative-pause",
        ROLLOUT,
        {f"{_STEPS}[1].pause.duration": -30},
        f"{_STEPS}[1].pause.duration",
    ),
    _case(
        "rollout-canary-scale-two-ways",
        ROLLOUT,
        {f"{_STEPS}[0]": {"setCanaryScale": {"replicas": 1, "weight": 10}}},
        f"{_STEPS}[0].setCanaryScale",
    ),
    _case(
        "rollout-analysis-step-without-templates",
        ROLLOUT,
        {f"{_STEPS}[2].analysis.templates": []},
        f"{_STEPS}[2].analysis.templates",
    ),
    _case("rollout-template-without-selector", ROLLOUT, {"spec.selector": REMOVE}, "spec.selector"),
    _case(
        "rollout-template-and-workload-ref",
        ROLLOUT,
        {"spec.workloadRef": {"name": "web"}},
        "spec",
    ),
    _case("rollout-no-target", ROLLOUT, {"spec.template": REMOVE}, "spec"),
    _case("rollout-replicas-as-string", ROLLOUT, {"spec.replicas": "3"}, "spec.replicas"),
    _case(
        "rollout-negative-revision-history",
        ROLLOUT,
        {"spec.revisionHistoryLimit": -1},
        "spec.revisionHistoryLimit",
    ),
    _case(
        "rollout-two-traffic-routers",
        ROLLOUT,
        {"spec.strategy.canary.trafficRouting.gatewayAPI": {"httpRoute": "web"}},
        "spec.strategy.canary.trafficRouting",
    ),
    _case(
        "rollout-routing-without-canary-service",
        ROLLOUT,
        {"spec.strategy.canary.canaryService": REMOVE},
        "spec.strategy.canary.trafficRouting",
    ),
    _case(
        "rollout-stable-service-is-canary-service",
        ROLLOUT,
        {"spec.strategy.canary.canaryService": "web"},
        "spec.strategy.canary.stableService",
    ),
    _case(
        "rollout-match-without-routing",
        ROLLOUT,
        {"spec.strategy.canary.trafficRouting": REMOVE, "spec.strategy.canary.match": {"header": "X-Canary"}},
        "spec.strategy.canary.trafficRouting",
    ),
    _case(
        "rollout-service-name-with-underscore",
        ROLLOUT,
        {"spec.strategy.canary.canaryService": "web_canary"},
        "spec.strategy.canary.canaryService",
    ),
    _case("rollout-unknown-field", ROLLOUT, {"spec.strategy.canary.stepz": []}, "spec.strategy.canary.stepz"),
    _case(
        "rollout-max-surge-not-a-percentage",
        ROLLING,
        {"spec.strategy.rolling.maxSurge": "25"},
        "spec.strategy.rolling.maxSurge",
    ),
    _case(
        "rollout-surge-and-unavailable-zero",
        ROLLING,
        {"spec.strategy.rolling.maxSurge": "0%"},
        "spec.strategy.rolling",
    ),
    _case(
        "rollout-bluegreen-without-active-service",
        BLUE_GREEN,
        {"spec.strategy.blueGreen.activeService": REMOVE},
        "spec.strategy.blueGreen.activeService",
    ),
    _case(
        "rollout-bluegreen-preview-is-active",
        BLUE_GREEN,
        {"spec.strategy.blueGreen.previewService": "web"},
        "spec.strategy.blueGreen.previewService",
    ),
    _case(
        "rollout-bluegreen-timed-promotion-disabled",
        BLUE_GREEN,
        {
            "spec.strategy.blueGreen.autoPromotionEnabled": False,
            "spec.strategy.blueGreen.autoPromotionSeconds": 60,
        },
        "spec.strategy.blueGreen.autoPromotionSeconds",
    ),
    # AnalysisTemplate and ClusterAnalysisTemplate
    _case(
        "analysis-unknown-provider",
        ANALYSIS_TEMPLATE,
        {f"{_METRIC}.provider": {"datadog": {"query": "avg:errors{*}"}}},
        f"{_METRIC}.provider",
    ),
    _case(
        "analysis-two-providers",
        ANALYSIS_TEMPLATE,
        {f"{_METRIC}.provider.web": {"url": "http://web/health"}},
        f"{_METRIC}.provider",
    ),
    _case("analysis-no-metrics", ANALYSIS_TEMPLATE, {"spec.metrics": []}, "spec.metrics"),
    _case(
        "analysis-duplicate-metric-names",
        ANALYSIS_TEMPLATE,
        {"spec.metrics": ANALYSIS_TEMPLATE["spec"]["metrics"] * 2},
        "spec.metrics",
    ),
    _case(
        "analysis-interval-in-words",
        ANALYSIS_TEMPLATE,
        {f"{_METRIC}.interval": "1 minute"},
        f"{_METRIC}.interval",
    ),
    _case("analysis-interval-days", ANALYSIS_TEMPLATE, {f"{_METRIC}.interval": "1d"}, f"{_METRIC}.interval"),
    _case(
        "analysis-count-without-interval",
        ANALYSIS_TEMPLATE,
        {f"{_METRIC}.interval": REMOVE},
        f"{_METRIC}.interval",
    ),
    _case("analysis-no-condition", ANALYSIS_TEMPLATE, {f"{_METRIC}.successCondition": REMOVE}, _METRIC),
    _case(
        "analysis-negative-failure-limit",
        ANALYSIS_TEMPLATE,
        {f"{_METRIC}.failureLimit": -1},
        f"{_METRIC}.failureLimit",
    ),
    _case("analysis-judge-with-condition", JUDGE, {f"{_METRIC}.failureCondition": "result > 1"}, _METRIC),
    _case(
        "analysis-judge-unknown-direction",
        JUDGE,
        {f"{_METRIC}.provider.judge.direction": "up"},
        f"{_METRIC}.provider.judge.direction",
    ),
    _case(
        "analysis-judge-too-few-samples",
        JUDGE,
        {f"{_METRIC}.provider.judge.minSamples": 1},
        f"{_METRIC}.provider.judge.minSamples",
    ),
    _case(
        "cluster-analysis-web-not-http",
        CLUSTER_ANALYSIS_TEMPLATE,
        {f"{_METRIC}.provider.web.url": "ftp://web/health"},
        f"{_METRIC}.provider.web.url",
    ),
    _case(
        "cluster-analysis-web-unknown-method",
        CLUSTER_ANALYSIS_TEMPLATE,
        {f"{_METRIC}.provider.web.method": "DELETE"},
        f"{_METRIC}.provider.web.method",
    ),
    _case(
        "cluster-analysis-web-body-with-get",
        CLUSTER_ANALYSIS_TEMPLATE,
        {f"{_METRIC}.provider.web.body": "{}"},
        f"{_METRIC}.provider.web.body",
    ),
    _case(
        "cluster-analysis-header-value-and-secret",
        CLUSTER_ANALYSIS_TEMPLATE,
        {f"{_METRIC}.provider.web.headers[0].valueFrom": {"secretKeyRef": {"name": "token", "key": "value"}}},
        f"{_METRIC}.provider.web.headers[0]",
    ),
    # ClusterProfile
    _case(
        "profile-unknown-ingress-api-version",
        CLUSTER_PROFILE,
        {"spec.ingressApiVersion": "networking.k8s.io/v2"},
        "spec.ingressApiVersion",
    ),
    _case(
        "profile-registry-trailing-slash",
        CLUSTER_PROFILE,
        {"spec.imageRegistry": "registry.example.com/"},
        "spec.imageRegistry",
    ),
    _case(
        "profile-exists-toleration-with-value",
        CLUSTER_PROFILE,
        {"spec.tolerations[0].operator": "Exists"},
        "spec.tolerations[0].value",
    ),
    _case(
        "profile-autoscaling-switched-on-without-a-block",
        CLUSTER_PROFILE,
        {"spec.autoscaling": {"enabled": True}},
        "spec.autoscaling.enabled",
    ),
    _case(
        "profile-autoscaling-language-without-target",
        CLUSTER_PROFILE,
        {"spec.autoscaling": {"enabled": True, "languages": {"java": {"maxReplicas": 4}}}},
        "spec.autoscaling.languages.java",
    ),
)
