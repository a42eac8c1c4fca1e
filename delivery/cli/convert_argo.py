"""Argo Rollouts' Rollout, AnalysisTemplate and ClusterAnalysisTemplate as ours (pure).

Our kinds are written in Argo's shape, so most of a conversion is the apiVersion. What is rewritten
first: the Gateway API traffic plugin (`trafficRouting.plugins["argoproj-labs/gatewayAPI"]`) as our
built-in `trafficRouting.gatewayAPI`; `setHeaderRoute` steps (with `managedRoutes`) as
`canary.match`; Argo's integers written as strings (`count: "5"`) as integers; and what the
apiserver and Argo's controller wrote into the object (status, `rollout.argoproj.io/` annotations,
resourceVersion...) is dropped, as `kubectl get -o yaml` output carries it. Then the object is fitted
to our model (`convert_fit`), each refused field reported with the reason below when we know it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from delivery.cli.convert_fit import API_VERSION, Omission, Reasons, describe, fit, origins

GROUP = "argoproj.io"
KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate")
NOT_CONVERTED = {
    "AnalysisRun": "not converted: analyses run inside the Rollout here and are kept in its "
    "status.analysisHistory; there is no AnalysisRun object to write",
    "Experiment": "not converted: there is no Experiment object here (see the canary `experiment` step)",
}
GATEWAY_PLUGIN = "argoproj-labs/gatewayAPI"
_SERVER_METADATA = (
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_WRITTEN_BY_ARGO = ("rollout.argoproj.io/", "kubectl.kubernetes.io/last-applied-configuration")
_INTEGERS = ("count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit", "consecutiveSuccessLimit")
_ROUTERS = "istio|smi|alb|ambassador|appMesh|traefik|apisix"
_PROVIDERS = "datadog|newRelic|wavefront|kayenta|cloudWatch|graphite|influxdb|skywalking|plugin"
_CANARY = r"spec\.strategy\.canary"

ROLLOUT_REASONS: Reasons = (
    (
        r"spec\.paused",
        "pausing is a command here: `kubectl delivery pause` (an annotation the controller consumes)",
    ),
    (
        r"spec\.analysis(\..*)?",
        "no AnalysisRun objects to keep here: the latest analyses live in status.analysisHistory",
    ),
    (
        rf"{_CANARY}\.trafficRouting\.({_ROUTERS})",
        "no such traffic router here: trafficRouting takes nginx or gatewayAPI (without one, the "
        "weight is the ratio of replicas)",
    ),
    (rf"{_CANARY}\.trafficRouting\.plugins(\..*)?", "traffic router plugins are not available here"),
    (
        rf"{_CANARY}\.trafficRouting\.managedRoutes(\..*)?",
        "header routes are canary.match here (written from the setHeaderRoute steps)",
    ),
    (
        rf"{_CANARY}\.trafficRouting\.nginx\.(stableIngresses|additionalStableIngresses)",
        "one stable Ingress here (stableIngress)",
    ),
    (
        rf"{_CANARY}\.trafficRouting\.nginx\..*",
        "the canary Ingress's annotations are the controller's here (nginx.ingress.kubernetes.io/canary*)",
    ),
    (rf"{_CANARY}\.steps\[\]\.setMirrorRoute", "traffic mirroring is not available here"),
    (rf"{_CANARY}\.steps\[\]\.setHeaderRoute", "not written as canary.match (see the reason above)"),
    (rf"{_CANARY}\.steps\[\]\.experiment", "the experiment step is not available in this version"),
    (
        rf"{_CANARY}\.pingPong(\..*)?",
        "ping-pong Services are not available here: canaryService and stableService",
    ),
)
TEMPLATE_REASONS: Reasons = (
    (
        rf"spec\.metrics\[\]\.provider\.({_PROVIDERS})",
        "no such metric provider here: prometheus, web and job (and judge, canary against stable, "
        "for what Kayenta does)",
    ),
    (
        r"spec\.metrics\[\]\.provider\.prometheus\.(timeout|insecure|headers|authentication)",
        "the controller's connection to Prometheus is configured once, not per metric",
    ),
    (
        r"spec\.metrics\[\]\.provider\.web\.(insecure|authentication)(\..*)?",
        "not available for web metrics here",
    ),
    (r"spec\.templates(\..*)?", "templates that include others are not available: copy their metrics in"),
    (
        rf"spec\.metrics\[\]\.({'|'.join(_INTEGERS)})",
        "an integer here: a value from an argument (`{{args.x}}`) is not available",
    ),
)


def _metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's metadata without what the apiserver or Argo's controller wrote into it."""
    kept = {key: value for key, value in metadata.items() if key not in _SERVER_METADATA}
    annotations = {
        key: value
        for key, value in (kept.get("annotations") or {}).items()
        if not key.startswith(_WRITTEN_BY_ARGO)
    }
    kept.pop("annotations", None)
    if annotations:
        kept["annotations"] = annotations
    return kept


def _integers(metrics: list[Any]) -> None:
    """Argo's IntOrString limits written as strings of digits, as the integers they are."""
    for metric in metrics:
        if isinstance(metric, dict):
            for field in _INTEGERS:
                value = metric.get(field)
                if isinstance(value, str) and value.isdigit():
                    metric[field] = int(value)


def _gateway_plugin(routing: dict[str, Any], namespace: str | None, source: str) -> list[Omission]:
    """`plugins["argoproj-labs/gatewayAPI"]` as `gatewayAPI.httpRoute` (one HTTPRoute, ours)."""
    plugins = routing.get("plugins")
    if not isinstance(plugins, dict) or not isinstance(plugins.get(GATEWAY_PLUGIN), dict):
        return []
    config = plugins.pop(GATEWAY_PLUGIN)
    if not plugins:
        del routing["plugins"]
    where = f"spec.strategy.canary.trafficRouting.plugins.{GATEWAY_PLUGIN}"
    routes = (
        [config["httpRoute"]]
        if "httpRoute" in config
        else [r.get("name") for r in config.get("httpRoutes", [])]
    )
    omissions = [
        Omission(source, f"{where}.{field}", "not available here: one HTTPRoute, in the Rollout's namespace")
        for field in config
        if field not in ("httpRoute", "httpRoutes", "namespace")
    ]
    if namespace and config.get("namespace") not in (None, namespace):
        omissions.append(
            Omission(source, f"{where}.namespace", "the HTTPRoute must be in the Rollout's namespace here")
        )
    if len(routes) > 1:
        omissions.append(Omission(source, f"{where}.httpRoutes", f"one HTTPRoute here: {routes[0]} kept"))
    if routes and isinstance(routes[0], str):
        routing["gatewayAPI"] = {"httpRoute": routes[0]}
    return omissions


def _header_routes(canary: dict[str, Any], source: str) -> list[Omission]:
    """`setHeaderRoute` steps as `canary.match`: one exact header (requests carrying it reach the
    canary at every step here, not only from that step on, so the step itself goes)."""
    steps = canary.get("steps")
    if not isinstance(steps, list):
        return []
    omissions: list[Omission] = []
    kept: list[Any] = []
    for index, step in enumerate(steps):
        route = step.get("setHeaderRoute") if isinstance(step, dict) else None
        if route is None:
            kept.append(step)
            continue
        where = f"spec.strategy.canary.steps[{index}].setHeaderRoute"
        matches = route.get("match") or []
        exact = [m for m in matches if isinstance(m.get("headerValue"), dict) and "exact" in m["headerValue"]]
        if "match" in canary or not matches:
            why = "canary.match is set already" if matches else "a route removed: nothing to match"
            omissions.append(Omission(source, where, why))
        elif len(matches) > 1 or not exact:
            omissions.append(
                Omission(
                    source, where, "canary.match takes one header matched exactly (no prefix, regex, several)"
                )
            )
        else:
            canary["match"] = {
                "header": exact[0].get("headerName"),
                "headerValue": exact[0]["headerValue"]["exact"],
            }
            omissions.append(
                Omission(
                    source,
                    where,
                    "written as canary.match: requests with the header reach the canary at every step, "
                    "not only from this step on",
                )
            )
    steps[:] = kept  # in place: the steps keep their identity, so later omissions name them as written
    return omissions


def _rollout(body: dict[str, Any], source: str) -> list[Omission]:
    namespace = (body.get("metadata") or {}).get("namespace")
    canary = ((body.get("spec") or {}).get("strategy") or {}).get("canary")
    if not isinstance(canary, dict):
        return []
    omissions = _header_routes(canary, source)
    routing = canary.get("trafficRouting")
    if isinstance(routing, dict):
        omissions += _gateway_plugin(routing, namespace, source)
    return omissions


def convert(body: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Omission]]:
    """One Argo object of `KINDS` as ours (None when nothing of it maps), and what was left out."""
    source = describe(body)
    ours = copy.deepcopy({key: value for key, value in body.items() if key != "status"})
    ours["apiVersion"] = API_VERSION
    ours["metadata"] = _metadata(ours.get("metadata") or {})
    known = origins(ours)
    if ours.get("kind") == "Rollout":
        omissions = _rollout(ours, source)
        reasons = ROLLOUT_REASONS
    else:
        _integers((ours.get("spec") or {}).get("metrics") or [])
        omissions, reasons = [], TEMPLATE_REASONS
    fitted, refused = fit(ours, reasons, source, known)
    return fitted, omissions + refused
