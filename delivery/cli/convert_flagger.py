"""Flagger's Canary and MetricTemplate as a Rollout and an AnalysisTemplate (pure).

A Canary names a Deployment (`targetRef`) and Flagger runs a `-primary` copy of it; a Rollout takes
the Deployment's pod template over (`workloadRef`) and releases it itself, so there is no copy. The
Canary's `analysis` says which kind of release it is, as in Flagger:

- `stepWeight`/`maxWeight` or `stepWeights`: a canary, one `setWeight` step per weight, each
  followed by a pause of `interval` (Flagger moves the weight once per interval);
- `iterations` with `match`: A/B testing, a canary whose `match` sends those requests to it for
  `iterations` intervals at weight 0;
- `iterations` alone: blue-green, the analysis measured `iterations` times before promotion.

The metrics become one AnalysisTemplate named as the Canary: Flagger's builtin
`request-success-rate` and `request-duration` are written as the PromQL Flagger runs for the
provider (where we route or measure the same: nginx, and Flagger's `kubernetes` provider's
`http_request_duration_seconds`), a `templateRef` metric as its MetricTemplate's query (the
MetricTemplate must be among the inputs: Flagger keeps the threshold in the Canary, so a
MetricTemplate alone is no AnalysisTemplate); `thresholdRange` becomes the `successCondition`,
`threshold` (failed checks before a rollback) each metric's `failureLimit`. Webhooks are our hooks,
which take Flagger's types and answers. Services: Flagger generates `<service>`, `-primary` and
`-canary` from `spec.service`; the Rollout names `<service>-canary` as its canary Service and, as
stable, the one Flagger's router sends the primary's traffic to: `<service>` behind nginx's Ingress,
`<service>-primary` in its HTTPRoute. They must then exist without Flagger.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from delivery.cli.convert_fit import API_VERSION, Omission, describe, fit

GROUP = "flagger.app"
KINDS = ("Canary", "MetricTemplate")
NOT_CONVERTED = {
    "AlertProvider": "not converted: notifications are configured on the controller here "
    "(web hooks and Slack: docs/operating.md)",
}
BUILTIN = ("request-success-rate", "request-duration")
_POD = "{{args.rollout}}-{{args.canary-hash}}-[0-9a-zA-Z]+"
"""The canary revision's pods here, as Flagger's `{{ target }}-...` names the canary Deployment's."""
_SUCCESS_RATE = (
    'sum(rate($requests{$where,status!~"5.*"}[$interval])) / sum(rate($requests{$where}[$interval])) * 100'
)
_QUERIES: dict[str, dict[str, str]] = {
    "nginx": {
        "request-success-rate": _SUCCESS_RATE,
        "request-duration": "sum(rate(nginx_ingress_controller_ingress_upstream_latency_seconds_sum"
        "{$where}[$interval])) / sum(rate(nginx_ingress_controller_ingress_upstream_latency_seconds_count"
        "{$where}[$interval])) * 1000",
    },
    "kubernetes": {
        "request-success-rate": _SUCCESS_RATE,
        "request-duration": "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{$where}"
        "[$interval])) by (le)) * 1000",
    },
}
_REQUESTS = {
    "nginx": "nginx_ingress_controller_requests",
    "kubernetes": "http_request_duration_seconds_count",
}
_WHERE = {
    "nginx": 'namespace="{{args.namespace}}",ingress="$ingress"',
    "kubernetes": f'kubernetes_namespace="{{{{args.namespace}}}}",kubernetes_pod_name=~"{_POD}"',
}
"""Flagger's builtin queries (its pkg/metrics/observers) for the providers whose metrics we have the
same way, the duration in milliseconds as Flagger compares it; `$requests` and `$where` per provider
(below), `$ingress` and `$interval` per Canary."""
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_DEFAULT_INTERVAL = "1m"
_HANDLED_SPEC = (
    "targetRef",
    "provider",
    "ingressRef",
    "routeRef",
    "service",
    "analysis",
    "canaryAnalysis",
    "progressDeadlineSeconds",
)
_HANDLED_ANALYSIS = (
    "interval",
    "threshold",
    "maxWeight",
    "stepWeight",
    "stepWeights",
    "iterations",
    "match",
    "metrics",
    "webhooks",
)
_WHY_NOT: dict[str, str] = {
    "spec.autoscalerRef": "point the HPA's scaleTargetRef at the Rollout (kind Rollout, apiVersion "
    f"{API_VERSION}): it scales the Rollout, not a primary copy",
    "spec.skipAnalysis": "not available: `kubectl delivery promote --full` skips the remaining steps",
    "spec.revertOnDeletion": "not available: deleting a Rollout deletes its ReplicaSets",
    "spec.suspend": "not available: `kubectl delivery pause` holds a release",
    "spec.analysis.alerts": "notifications are configured on the controller here (docs/operating.md)",
    "spec.analysis.stepWeightPromotion": "promotion moves all traffic at once here",
    "spec.analysis.mirror": "traffic mirroring is not available here",
    "spec.analysis.mirrorWeight": "traffic mirroring is not available here",
    "spec.analysis.primaryReadyThreshold": "not available: a step waits for all its pods to be available",
    "spec.analysis.canaryReadyThreshold": "not available: a step waits for all its pods to be available",
    "spec.analysis.sessionAffinity": "not available: canary.match routes by header or cookie",
}


@dataclass
class Inputs:
    """What the other documents given to `convert` tell a Canary: its MetricTemplates (by
    namespace/name) and Deployments (by namespace/name, for their replicas)."""

    metric_templates: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    deployments: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    referenced: set[str] = field(default_factory=set)
    """The MetricTemplates a Canary's metric names (written into its AnalysisTemplate, or said why not)."""

    @classmethod
    def of(cls, documents: Sequence[Mapping[str, Any]]) -> Inputs:
        inputs = cls()
        for document in documents:
            kind = document.get("kind")
            if kind == "MetricTemplate" and str(document.get("apiVersion", "")).startswith(f"{GROUP}/"):
                inputs.metric_templates[_key(document)] = document
            elif kind == "Deployment" and document.get("apiVersion") == "apps/v1":
                inputs.deployments[_key(document)] = document
        return inputs


def _key(document: Mapping[str, Any], namespace: str | None = None) -> str:
    metadata = document.get("metadata") or {}
    return f"{metadata.get('namespace') or namespace or ''}/{metadata.get('name')}"


def _metric_name(name: str) -> str:
    """A Flagger metric's name (any text) as one of our metric names (`Key`)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:63]
    return cleaned if cleaned and not cleaned[0].isdigit() and cleaned[0] != "-" else f"m-{cleaned}"[:63]


def _condition(metric: Mapping[str, Any], name: str) -> str | None:
    """`thresholdRange` (or the older `threshold` of a builtin) as a successCondition."""
    bounds = metric.get("thresholdRange") or {}
    low, high = bounds.get("min"), bounds.get("max")
    if low is None and high is None and "threshold" in metric:
        if name == "request-success-rate":
            low = metric["threshold"]
        else:
            high = metric["threshold"]
    parts = [f"result[0] >= {low}"] if low is not None else []
    parts += [f"result[0] <= {high}"] if high is not None else []
    return " && ".join(parts) or None


@dataclass
class _Canary:
    """One Canary's conversion under way: its names, and what was left out so far."""

    body: Mapping[str, Any]
    inputs: Inputs
    source: str
    omissions: list[Omission] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name"))

    @property
    def namespace(self) -> str | None:
        namespace = (self.body.get("metadata") or {}).get("namespace")
        return str(namespace) if namespace else None

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def analysis(self) -> Mapping[str, Any]:
        return self.spec.get("analysis") or self.spec.get("canaryAnalysis") or {}

    @property
    def provider(self) -> str:
        return str(self.spec.get("provider") or "")

    @property
    def interval(self) -> str:
        return str(self.analysis.get("interval") or _DEFAULT_INTERVAL)

    @property
    def service(self) -> str:
        service = self.spec.get("service") or {}
        return str(service.get("name") or (self.spec.get("targetRef") or {}).get("name"))

    def left_out(self, path: str, reason: str) -> None:
        self.omissions.append(Omission(self.source, path, reason))

    def routing(self) -> dict[str, Any] | None:
        """Our trafficRouting for the Canary's provider, or None (then the replicas' ratio)."""
        if self.provider == "nginx":
            ingress = (self.spec.get("ingressRef") or {}).get("name")
            if ingress:
                return {"nginx": {"stableIngress": ingress}}
            self.left_out("spec.ingressRef", "nginx needs the Ingress (ingressRef): none given")
        elif self.provider.startswith("gatewayapi"):
            return {"gatewayAPI": {"httpRoute": self.service}}
        elif self.provider not in ("", "kubernetes"):
            self.left_out(
                "spec.provider",
                f"no {self.provider} router here (nginx, gatewayapi): the weight is the ratio of replicas",
            )
        else:
            self.left_out(
                "spec.provider",
                f"{self.provider or 'unset'}: no router here, the weight is the ratio of replicas",
            )
        return None

    def weights(self) -> list[int]:
        analysis = self.analysis
        if analysis.get("stepWeights"):
            return [int(weight) for weight in analysis["stepWeights"]]
        step, top = int(analysis.get("stepWeight") or 0), int(analysis.get("maxWeight") or 100)
        if step <= 0:
            return []
        weights = list(range(step, top, step))
        return [*weights, top] if top not in weights else weights

    def query(  # noqa: PLR0911 - one return per reason a metric is left out
        self, metric: Mapping[str, Any], index: int
    ) -> tuple[str, str | None] | None:
        """The PromQL of a metric and its Prometheus's address (None: the controller's)."""
        where = f"spec.analysis.metrics[{index}]"
        name = str(metric.get("name"))
        window = str(metric.get("interval") or _DEFAULT_INTERVAL)
        reference = metric.get("templateRef")
        if reference is None:
            queries = _QUERIES.get(self.provider)
            if name not in BUILTIN:
                self.left_out(where, f"{name}: not a builtin metric, and no templateRef")
                return None
            if queries is None:
                self.left_out(
                    where,
                    f"no builtin {name} for provider {self.provider or 'unset (Flagger: -mesh-provider)'} "
                    "here: write its query as a MetricTemplate",
                )
                return None
            ingress = (self.spec.get("ingressRef") or {}).get("name", "")
            where_ = string.Template(_WHERE[self.provider]).safe_substitute(ingress=ingress)
            query = string.Template(queries[name]).substitute(
                requests=_REQUESTS[self.provider], where=where_, interval=window
            )
            return query, None
        key = f"{reference.get('namespace') or self.namespace or ''}/{reference.get('name')}"
        template = self.inputs.metric_templates.get(key)
        shown = key.lstrip("/")
        if template is None:
            self.left_out(f"{where}.templateRef", f"MetricTemplate {shown} is not among the inputs (-f)")
            return None
        self.inputs.referenced.add(key)
        provider = (template.get("spec") or {}).get("provider") or {}
        if provider.get("type", "prometheus") != "prometheus":
            why = f"MetricTemplate {shown}: no {provider.get('type')} provider here"
            self.left_out(f"{where}.templateRef", why)
            return None
        if provider.get("secretRef") or provider.get("insecureSkipVerify"):
            self.left_out(
                f"{where}.templateRef",
                f"MetricTemplate {shown}: Prometheus credentials and TLS options are the controller's here",
            )
        text = self.variables(str((template.get("spec") or {}).get("query", "")), metric, window, where)
        if text is None:
            return None
        return text, provider.get("address")

    def variables(self, query: str, metric: Mapping[str, Any], window: str, where: str) -> str | None:
        """A MetricTemplate's Go-template variables as values, `namespace` as our argument."""
        values = {
            "namespace": "{{args.namespace}}",
            "name": self.name,
            "target": str((self.spec.get("targetRef") or {}).get("name")),
            "service": self.service,
            "ingress": str((self.spec.get("ingressRef") or {}).get("name", "")),
            "route": self.service,
            "interval": window,
        }
        values |= {f"variables.{k}": str(v) for k, v in (metric.get("templateVariables") or {}).items()}
        unknown = sorted({m for m in _VARIABLE.findall(query) if m not in values})
        if unknown:
            self.left_out(where, f"the query uses {', '.join(unknown)}, which has no value here")
            return None
        return _VARIABLE.sub(lambda match: values[match.group(1)], query)

    def metrics(self, count: int | None) -> list[dict[str, Any]]:
        threshold = self.analysis.get("threshold")
        written: list[dict[str, Any]] = []
        for index, metric in enumerate(self.analysis.get("metrics") or []):
            name = str(metric.get("name"))
            condition = _condition(metric, name)
            if condition is None:
                self.left_out(f"spec.analysis.metrics[{index}]", "no thresholdRange: nothing to judge by")
                continue
            found = self.query(metric, index)
            if found is None:
                continue
            query, address = found
            prometheus = {"query": query} | ({"address": address} if address else {})
            ours: dict[str, Any] = {
                "name": _metric_name(name),
                "interval": self.interval,
                "successCondition": condition,
                "provider": {"prometheus": prometheus},
            }
            if threshold:
                ours["failureLimit"] = max(0, int(threshold) - 1)
            if count:
                ours["count"] = count
            written.append(ours)
        return written

    def hooks(self) -> list[dict[str, Any]]:
        written: list[dict[str, Any]] = []
        for index, webhook in enumerate(self.analysis.get("webhooks") or []):
            hook: dict[str, Any] = {
                "name": _metric_name(str(webhook.get("name", f"hook-{index}"))),
                "type": webhook.get("type") or "rollout",
                "url": webhook.get("url"),
            }
            for key in ("timeout", "retries"):
                if key in webhook:
                    hook[key] = webhook[key]
            if webhook.get("metadata"):
                hook["metadata"] = {str(k): str(v) for k, v in webhook["metadata"].items()}
            for key in sorted(set(webhook) - {"name", "type", "url", "timeout", "retries", "metadata"}):
                self.left_out(f"spec.analysis.webhooks[{index}].{key}", "not available for hooks here")
            written.append(hook)
        return written

    def strategy(self, analysis: dict[str, Any] | None) -> dict[str, Any]:
        iterations = self.analysis.get("iterations")
        preview = f"{self.service}-canary"
        if iterations and not self.analysis.get("match"):
            blue_green: dict[str, Any] = {"activeService": self.service, "previewService": preview}
            if analysis:
                blue_green["prePromotionAnalysis"] = analysis
            return {"blueGreen": blue_green}
        routing = self.routing()
        # Flagger's HTTPRoute (named as the service) sends to `-primary` and `-canary`; its nginx
        # Ingress (ingressRef) to the service itself, which Flagger points at the primary's pods
        stable = f"{self.service}-primary" if routing and "gatewayAPI" in routing else self.service
        canary: dict[str, Any] = {"stableService": stable, "canaryService": preview} if routing else {}
        if routing:
            canary["trafficRouting"] = routing
        if iterations:
            canary["steps"] = [{"pause": {"duration": f"{int(iterations) * _seconds(self.interval)}s"}}]
            match = self.match()
            if match and routing:
                canary["match"] = match
            elif match:
                self.left_out("spec.analysis.match", "canary.match needs a router (nginx, gatewayapi)")
        else:
            pause = {"pause": {"duration": self.interval}}
            canary["steps"] = [step for weight in self.weights() for step in ({"setWeight": weight}, pause)]
        if analysis:
            canary["analysis"] = analysis
        return {"canary": canary}

    def match(self) -> dict[str, Any] | None:
        """Flagger's A/B `match` (header or cookie conditions) as our one header or cookie."""
        conditions = self.analysis.get("match") or []
        headers = (conditions[0].get("headers") or {}) if len(conditions) == 1 else {}
        if len(headers) != 1:
            self.left_out("spec.analysis.match", "canary.match takes one header or cookie condition")
            return None
        ((header, value),) = headers.items()
        if header.lower() == "cookie" and "regex" in value:
            cookie = re.sub(r"^\^?\.\*|\.\*\$?$", "", str(value["regex"])).split("=")[0]
            return {"cookie": cookie} if re.fullmatch(r"[-A-Za-z0-9_]+", cookie) else None
        if "exact" in value:
            return {"header": header, "headerValue": str(value["exact"])}
        self.left_out("spec.analysis.match", "canary.match matches a header's value exactly (no regex)")
        return None

    def rollout(self, template: str | None) -> dict[str, Any]:
        target = self.spec.get("targetRef") or {}
        analysis = {"templates": [{"templateName": template}]} if template else None
        spec: dict[str, Any] = {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target.get("name")}
        }
        deployment = self.inputs.deployments.get(f"{self.namespace or ''}/{target.get('name')}")
        replicas = (deployment or {}).get("spec", {}).get("replicas") if deployment else None
        if replicas is not None:
            spec["replicas"] = replicas
        else:
            self.left_out(
                "spec.targetRef",
                "its Deployment is not among the inputs: spec.replicas is not written (1 unless you set it)",
            )
        if "progressDeadlineSeconds" in self.spec:
            spec["progressDeadlineSeconds"] = self.spec["progressDeadlineSeconds"]
        spec["strategy"] = self.strategy(analysis)
        hooks = self.hooks()
        if hooks:
            spec["hooks"] = hooks
        return {"apiVersion": API_VERSION, "kind": "Rollout", "metadata": self.metadata(), "spec": spec}

    def metadata(self) -> dict[str, Any]:
        written = {"name": self.name} | ({"namespace": self.namespace} if self.namespace else {})
        labels = (self.body.get("metadata") or {}).get("labels")
        return written | ({"labels": labels} if labels else {})

    def unhandled(self) -> None:
        for key in sorted(set(self.spec) - set(_HANDLED_SPEC)):
            self.left_out(f"spec.{key}", _WHY_NOT.get(f"spec.{key}", "not available here"))
        for key in sorted(set(self.analysis) - set(_HANDLED_ANALYSIS)):
            self.left_out(f"spec.analysis.{key}", _WHY_NOT.get(f"spec.analysis.{key}", "not available here"))
        if self.spec.get("service"):
            self.left_out(
                "spec.service",
                f"Flagger generates Services from it; the Rollout names {self.service} (stable) and "
                f"{self.service}-canary (canary), which must exist without Flagger (its own are deleted with "
                "the Canary)",
            )


def _seconds(duration: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return round(sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|s|m|h)", duration)))


def convert(body: Mapping[str, Any], inputs: Inputs) -> tuple[list[dict[str, Any]], list[Omission]]:
    """A Canary as a Rollout and (when it has metrics that map) an AnalysisTemplate, both fitted
    to our models, and what was left out."""
    canary = _Canary(body, inputs, describe(body))
    target = canary.spec.get("targetRef") or {}
    if target.get("kind", "Deployment") != "Deployment":
        why = f"not converted: a Rollout takes a Deployment over, not a {target.get('kind')}"
        canary.left_out("spec.targetRef", why)
        return [], canary.omissions
    canary.unhandled()
    iterations = canary.analysis.get("iterations")
    metrics = canary.metrics(int(iterations) if iterations else None)
    written: list[dict[str, Any]] = []
    template_name = None
    if metrics:
        template = {
            "apiVersion": API_VERSION,
            "kind": "AnalysisTemplate",
            "metadata": canary.metadata(),
            "spec": {"metrics": metrics},
        }
        fitted, omissions = fit(template, (), canary.source)
        canary.omissions += omissions
        if fitted is not None:
            written.append(fitted)
            template_name = canary.name
    fitted, omissions = fit(canary.rollout(template_name), (), canary.source)
    canary.omissions += omissions
    if fitted is not None:
        written.insert(0, fitted)
    return written, canary.omissions
