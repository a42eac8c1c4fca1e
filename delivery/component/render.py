"""Render a Component into the objects that run it: pure, (component, cluster, templates) -> objects.

Python decides precedence (the Component's own fields, then the language template's defaults,
then the ClusterProfile's); the templates decide the shape of every object. So a platform
engineer changes a probe default, adds a sidecar or an annotation by editing a template, and
never needs to touch code, while an application developer's five lines always win.

The templates, in the order they are rendered (each a flat file name, see `templating`):
- `language-<developLanguage>.yaml.j2`: defaults (env, resources, probes) of that language;
- `pod.yaml.j2`: the pod template, from the merged container and the ClusterProfile's scheduling;
- `release-defaults.yaml.j2`: the strategy block of a `release` that names none;
- `workload-<kind>.yaml.j2`: the workload (Deployment, StatefulSet, DaemonSet, or Rollout when a
  Deployment component has a `release`);
- `autoscaling.yaml.j2`: the HorizontalPodAutoscaler of an autoscaled Component (its own
  `autoscaling`, else the ClusterProfile's: `autoscaling_of`), which scales the workload;
- `run-<runType>.yaml.j2`: what the run type adds (a server: its Services and its Ingress).
Then `spec.overrides` are applied, and every object is labelled and owned by the Component. The
workload of an autoscaled Component carries no `replicas`, whatever a template or override says:
the autoscaler sets them, and a controller that applied them would undo every scale it makes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from delivery.api.component import (
    Autoscaling,
    ComponentSpecV1Beta1,
    Probe,
    Protocol,
    RunType,
    ServiceType,
    WorkloadType,
)
from delivery.api.definition import COMPONENT_GROUP
from delivery.api.profile import ClusterProfileSpec, IngressApiVersion, LoadBalancerType
from delivery.api.rollout import StrategyName
from delivery.component.overrides import apply_overrides
from delivery.component.templating import SUFFIX, RenderError, TemplateSet
from delivery.kube import shard
from delivery.kube.api import Kind, Object
from delivery.kube.discovery import HORIZONTAL_POD_AUTOSCALER, INGRESS
from delivery.kube.kinds import (
    DAEMON_SET,
    DEPLOYMENT,
    ROLLOUT,
    SERVICE,
    STATEFUL_SET,
)

NAME_LABEL = f"{COMPONENT_GROUP}/name"
"""On every rendered object (and pod): which Component it belongs to. The watches select on it."""
SELECTOR_LABEL = "app"
"""The pods' selector: `app: <name>`, the label most existing manifests already select on."""
LOAD_BALANCER_ANNOTATION = f"{COMPONENT_GROUP}/load-balancer"
"""On a Service bound to a load balancer the controller manages (its value: `luoji-slb`)."""

RENDERABLE: dict[tuple[str, str], Kind] = {
    (kind.api_version, kind.kind): kind
    for kind in (
        DEPLOYMENT,
        STATEFUL_SET,
        DAEMON_SET,
        SERVICE,
        ROLLOUT,
        *(api.at(version) for api in (HORIZONTAL_POD_AUTOSCALER, INGRESS) for version in api.versions),
    )
}
"""What a template may render: the kinds the controller knows how to apply, watch and prune (in
every version it speaks; the Component controller refuses one the cluster does not serve)."""

# Newest first: the version chosen when the ClusterProfile names one the cluster does not serve.
_INGRESS_PREFERENCE = tuple(IngressApiVersion)


@dataclass(frozen=True)
class Cluster:
    """What rendering knows of the cluster: its ClusterProfile and the Ingress versions it serves."""

    profile: ClusterProfileSpec = field(default_factory=ClusterProfileSpec)
    served_ingress_versions: frozenset[str] = frozenset({IngressApiVersion.NETWORKING_V1.value})

    @property
    def ingress_api_version(self) -> str:
        """The profile's version when the cluster serves it, else the newest it serves."""
        return ingress_api_version(self.profile.ingress_api_version, self.served_ingress_versions)


def ingress_api_version(preferred: str, served: Collection[str]) -> str:
    if preferred in served or not served:
        return preferred
    return next((version.value for version in _INGRESS_PREFERENCE if version.value in served), preferred)


@dataclass(frozen=True)
class Rendered:
    objects: tuple[Object, ...]
    workload_kind: str
    """The kind of the object that runs the pods (named like the Component)."""
    autoscaling: Autoscaling | None = None
    """What the HorizontalPodAutoscaler was rendered from, when the Component is autoscaled."""

    @property
    def workload(self) -> Object:
        return next(obj for obj in self.objects if obj["kind"] == self.workload_kind)


def render(component: Object, cluster: Cluster, templates: TemplateSet) -> Rendered:
    """The objects `component` (a v1beta1 object as the apiserver returns it) renders to."""
    metadata = component["metadata"]
    try:
        spec = ComponentSpecV1Beta1.model_validate(component["spec"])
    except ValidationError as error:
        raise RenderError(f"spec: {error}") from error
    name, namespace = metadata["name"], metadata.get("namespace", "")
    profile = cluster.profile
    base: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "port": spec.port,
        "spec": component["spec"],
        "profile": profile.to_wire(),
    }
    language = templates.render_mapping(f"language-{spec.develop_language}{SUFFIX}", base)
    selector = {SELECTOR_LABEL: name}
    values: dict[str, Any] = {
        **base,
        "labels": {**selector, NAME_LABEL: name},
        "selector": selector,
        "image": _image(spec.image, profile.image_registry),
        "replicas": spec.replicas,
        "container": _container(spec, profile, language),
        "scheduling": _scheduling(profile),
    }
    values["pod"] = templates.render_mapping(f"pod{SUFFIX}", values)
    values["release"] = _release(spec, templates, base)
    workload_kind = _workload_kind(spec)
    autoscaling = autoscaling_of(spec, profile)
    values["autoscaling"] = autoscaling.to_wire() if autoscaling else None
    values["services"] = _services(spec, profile, name, values["release"])
    values["ingress"] = _ingress(spec, cluster, name, namespace, values["services"][0])
    workloads = templates.render(f"workload-{workload_kind}{SUFFIX}", values)
    if len(workloads) != 1 or not isinstance(workloads[0], dict) or workloads[0].get("kind") != workload_kind:
        raise RenderError(f"template workload-{workload_kind}{SUFFIX} must render one {workload_kind}")
    scalers = _autoscaler(workloads[0], values, templates) if autoscaling else []
    run = templates.render(f"run-{spec.run_type}{SUFFIX}", values)
    objects = [_checked(obj, namespace) for obj in (*workloads, *scalers, *run)]
    objects = apply_overrides(objects, spec.overrides or ())
    if autoscaling:
        objects = [_without_replicas(obj) if obj["kind"] == workload_kind else obj for obj in objects]
    owned = tuple(_owned(obj, component) for obj in objects)
    identities = [(obj["kind"], obj["metadata"]["name"]) for obj in owned]
    duplicates = sorted({f"{kind} {name}" for kind, name in identities if identities.count((kind, name)) > 1})
    if duplicates:
        raise RenderError(f"rendered twice: {', '.join(duplicates)}")
    if (workload_kind, name) not in identities:
        raise RenderError(f"the {workload_kind} must be named {name}, like the Component")
    return Rendered(owned, workload_kind, autoscaling)


def autoscaling_of(spec: ComponentSpecV1Beta1, profile: ClusterProfileSpec) -> Autoscaling | None:
    """How the Component is autoscaled, if it is: its own block; else, unless it sets `replicas`
    (or runs a DaemonSet), the ClusterProfile's block for its language or its defaults, while the
    profile's switch is on. Blocks are taken whole (see `ProfileAutoscaling`)."""
    if spec.autoscaling is not None:
        return spec.autoscaling
    cluster = profile.autoscaling
    if cluster is None or not cluster.enabled or spec.replicas is not None:
        return None
    if spec.workload_type is WorkloadType.DAEMON_SET:
        return None
    by_language = getattr(cluster.languages, spec.develop_language.value) if cluster.languages else None
    return by_language or cluster.defaults


def _autoscaler(workload: Object, values: Mapping[str, Any], templates: TemplateSet) -> list[Any]:
    """The HorizontalPodAutoscaler of the workload: one, aimed at that workload and nothing else."""
    name = f"autoscaling{SUFFIX}"
    target = {"apiVersion": workload.get("apiVersion"), "kind": workload["kind"], "name": values["name"]}
    scalers = templates.render(name, {**values, "workload": target})
    kind = HORIZONTAL_POD_AUTOSCALER.kind
    if len(scalers) != 1 or not isinstance(scalers[0], dict) or scalers[0].get("kind") != kind:
        raise RenderError(f"template {name} must render one {kind}")
    if (scalers[0].get("spec") or {}).get("scaleTargetRef") != target:
        raise RenderError(f"template {name}: spec.scaleTargetRef must be the workload, {target}")
    return scalers


def _without_replicas(workload: Object) -> Object:
    spec = {key: value for key, value in (workload.get("spec") or {}).items() if key != "replicas"}
    return {**workload, "spec": spec}


def _workload_kind(spec: ComponentSpecV1Beta1) -> str:
    if spec.release is None:
        return spec.workload_type.value
    if spec.workload_type is WorkloadType.DEPLOYMENT:
        return ROLLOUT.kind
    if spec.workload_type is WorkloadType.STATEFUL_SET:
        if spec.release.strategy is StrategyName.BLUE_GREEN:
            raise RenderError("release: a StatefulSet is released by rolling or canary steps, not blueGreen")
        return spec.workload_type.value
    raise RenderError(f"release: a {spec.workload_type} has no release strategy; remove `release`")


def _image(image: str, registry: str | None) -> str:
    """Images named without a registry get the cluster's registry prefix."""
    first, slash, _rest = image.partition("/")
    has_registry = slash and ("." in first or ":" in first or first == "localhost")
    return image if has_registry or not registry else f"{registry}/{image}"


def _container(
    spec: ComponentSpecV1Beta1, profile: ClusterProfileSpec, language: dict[str, Any]
) -> dict[str, Any]:
    env = {item["name"]: item for item in language.get("env") or []}
    env.update({item.name: item.to_wire() for item in spec.env or ()})
    probes = dict(language.get("probes") or {})
    for kind in ("liveness", "readiness", "startup"):
        probe: Probe | None = getattr(spec.probes, kind) if spec.probes else None
        if probe is not None:
            probes[kind] = _probe(probe, spec.port, kind)
    ports = [] if spec.port is None else [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}]
    for port in (spec.svc.ports or ()) if spec.svc else ():
        target = port.target_port or port.port
        protocol = (port.protocol or Protocol.TCP).value
        if all(known["containerPort"] != target for known in ports):
            ports.append({"containerPort": target, "protocol": protocol})
    return {
        "env": list(env.values()),
        "resources": spec.resources or profile.default_resources or language.get("resources") or {},
        "probes": probes,
        "ports": ports,
    }


def _probe(probe: Probe, port: int | None, kind: str) -> dict[str, Any]:
    handler: dict[str, Any]
    if probe.command:
        handler = {"exec": {"command": list(probe.command)}}
    elif port is None:
        raise RenderError(f"probes.{kind}: without `port`, a probe needs a `command`")
    elif probe.path:
        handler = {"httpGet": {"path": probe.path, "port": port}}
    else:
        handler = {"tcpSocket": {"port": port}}
    timing = probe.to_wire()
    timing.pop("path", None)
    timing.pop("command", None)
    return {**handler, **timing}


def _scheduling(profile: ClusterProfileSpec) -> dict[str, Any]:
    wire = profile.to_wire()
    return {key: wire.get(key) for key in ("nodeSelector", "tolerations")}


def _release(
    spec: ComponentSpecV1Beta1, templates: TemplateSet, base: Mapping[str, Any]
) -> dict[str, Any] | None:
    if spec.release is None:
        return None
    strategy = spec.release.strategy
    block = getattr(spec.release, {"blueGreen": "blue_green"}.get(strategy, strategy))
    if block is not None:
        return {"strategy": strategy.value, "spec": block.to_wire()}
    defaults = templates.render_mapping(f"release-defaults{SUFFIX}", base)
    if strategy.value not in defaults:
        raise RenderError(f"template release-defaults{SUFFIX} has no {strategy} block")
    return {"strategy": strategy.value, "spec": defaults[strategy.value]}


def _services(
    spec: ComponentSpecV1Beta1, profile: ClusterProfileSpec, name: str, release: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The Services of a server: its own, and those its release strategy names."""
    requested = spec.svc.type if spec.svc else ServiceType.CLUSTER_IP
    load_balancer = None
    kubernetes_type = requested.value
    if requested is ServiceType.LUOJI_SLB or (
        requested is ServiceType.LOAD_BALANCER and profile.load_balancer_type is LoadBalancerType.LUOJI_SLB
    ):
        load_balancer, kubernetes_type = ServiceType.LUOJI_SLB.value, ServiceType.NODE_PORT.value
    ports: list[dict[str, Any]]
    if spec.svc and spec.svc.ports:
        ports = [
            {
                "name": port.name or ("http" if index == 0 else f"port-{port.port}"),
                "port": port.port,
                "targetPort": port.target_port or port.port,
                "protocol": (port.protocol or Protocol.TCP).value,
                **({"nodePort": port.node_port} if port.node_port else {}),
            }
            for index, port in enumerate(spec.svc.ports)
        ]
    else:
        ports = [{"name": "http", "port": spec.port, "targetPort": spec.port, "protocol": "TCP"}]
    services = [{"name": name, "type": kubernetes_type, "loadBalancer": load_balancer, "ports": ports}]
    # The release's other Services reach the same pods inside the cluster (the Rollout controller
    # narrows their selectors to a revision); only the Component's own Service is exposed.
    internal = [{key: value for key, value in port.items() if key != "nodePort"} for port in ports]
    block = (release or {}).get("spec") or {}
    for key in ("activeService", "previewService", "stableService", "canaryService"):
        if block.get(key) and all(block[key] != known["name"] for known in services):
            services.append(
                {"name": block[key], "type": "ClusterIP", "loadBalancer": None, "ports": internal}
            )
    return services


def _ingress(
    spec: ComponentSpecV1Beta1, cluster: Cluster, name: str, namespace: str, service: Mapping[str, Any]
) -> dict[str, Any] | None:
    if spec.run_type is not RunType.SERVER:
        return None
    requested = spec.ingress
    domain = cluster.profile.ingress_domain
    host = requested.host if requested else (f"{name}.{namespace}.{domain}" if domain else None)
    return {
        "apiVersion": cluster.ingress_api_version,
        "host": host,
        "paths": list(requested.paths or ["/"]) if requested else ["/"],
        "className": (requested.class_ if requested else None) or cluster.profile.ingress_class,
        "servicePort": service["ports"][0]["port"],
    }


def _checked(obj: Any, namespace: str) -> Object:
    """A rendered document, refused unless it is an object of a kind the controller manages."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        raise RenderError(f"a template rendered something that is not an object: {str(obj)[:200]}")
    identity = (obj.get("apiVersion"), obj.get("kind"))
    if identity not in RENDERABLE:
        raise RenderError(
            f"a template rendered {identity[1]} {identity[0]}, which the controller does not manage"
        )
    if not isinstance(obj["metadata"].get("name"), str) or not obj["metadata"]["name"]:
        raise RenderError(f"a template rendered a {identity[1]} without metadata.name")
    obj["metadata"]["namespace"] = namespace
    return obj


def _owned(obj: Object, component: Object) -> Object:
    """Labelled with the Component's name and labels (its shard's among them), owned by it (when it
    has a uid: it has on the apiserver; a dry render of a manifest has none)."""
    metadata = component["metadata"]
    labels = {**(metadata.get("labels") or {}), **(obj["metadata"].get("labels") or {})}
    labels[NAME_LABEL] = metadata["name"]
    labels = shard.labelled(labels, shard.of(component))  # where the Component is, whatever a template says
    owned = {**obj, "metadata": {**obj["metadata"], "labels": labels}}
    if metadata.get("uid"):
        owned["metadata"]["ownerReferences"] = [
            {
                "apiVersion": component["apiVersion"],
                "kind": component["kind"],
                "name": metadata["name"],
                "uid": metadata["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return owned
