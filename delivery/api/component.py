"""Component: a service described in a few lines, rendered into a workload, Service and Ingress.

Two versions are served. v1alpha1 is the shape our users' existing manifests have; v1beta1 is
the storage version (the hub) and the only one that grows. See `ComponentSpecV1Alpha1` for what
v1alpha1 lacks, and `delivery.api.conversion` for how the two are converted without loss.
"""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from delivery.api.common import (
    Boolean,
    Count,
    FreeForm,
    Integer,
    KeyedBy,
    Model,
    ObjectName,
    ObservedStatus,
    Port,
    Resource,
    ShardName,
)
from delivery.api.definition import AGE, COMPONENT_GROUP, Column, CustomResource, Version
from delivery.api.rollout import BlueGreen, Canary, Rolling, StrategyName
from delivery.api.rules import Rule, at_least_one, at_most_one, exactly_one, requires

HUB_VERSION = "v1beta1"


class WorkloadType(enum.StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"


class Language(enum.StrEnum):
    """Each language has its own template defaults (start command, probes, resources)."""

    PYTHON = "python"
    GO = "go"
    JAVA = "java"
    NODEJS = "nodejs"
    PHP = "php"


class RunType(enum.StrEnum):
    SERVER = "server"  # listens on `port`: gets a Service, and an Ingress when asked
    WORKER = "worker"  # consumes work in the background: no Service


class ServiceType(enum.StrEnum):
    """v1beta1: our own load balancer service (`luoji-slb`) replaced Alibaba Cloud's SLB."""

    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    LUOJI_SLB = "luoji-slb"


class ServiceTypeV1Alpha1(enum.StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    ALIYUN_SLB = "aliyun-slb"


class Protocol(enum.StrEnum):
    TCP = "TCP"
    UDP = "UDP"


Image = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")]
HttpPath = Annotated[str, Field(max_length=1024, pattern=r"^/\S*$")]


class EnvVar(Model):
    name: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")]
    value: Annotated[str, Field(max_length=32768)] | None = None
    value_from: FreeForm | None = None
    """A Kubernetes EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef...)."""

    rules = (at_most_one("value", "valueFrom"),)


class Probe(Model):
    """An HTTP GET of `path` on the port, a command, or (neither) a TCP connection to the port."""

    path: HttpPath | None = None
    command: (
        Annotated[list[Annotated[str, Field(max_length=4096)]], Field(min_length=1, max_length=32)] | None
    ) = None
    initial_delay_seconds: Count | None = None
    period_seconds: Annotated[Integer, Field(ge=1, le=3600)] | None = None
    timeout_seconds: Annotated[Integer, Field(ge=1, le=3600)] | None = None
    failure_threshold: Annotated[Integer, Field(ge=1, le=1000)] | None = None

    rules = (at_most_one("path", "command"),)


class Probes(Model):
    """Unset probes come from the language's template."""

    liveness: Probe | None = None
    readiness: Probe | None = None
    startup: Probe | None = None


class ServicePort(Model):
    name: (
        Annotated[str, Field(min_length=1, max_length=15, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")] | None
    ) = None
    port: Port
    target_port: Port | None = None
    """Unset: the same as `port`."""
    protocol: Protocol | None = None
    """Unset: TCP."""
    node_port: Annotated[Integer, Field(ge=30000, le=32767)] | None = None
    """Only for NodePort and LoadBalancer Services; unset: allocated by the cluster."""


_NODE_PORT_TYPES = (ServiceType.NODE_PORT.value, ServiceType.LOAD_BALANCER.value)


class ServiceBase(Model):
    """The Service block of both versions; each adds its own `type`, which the rule reads."""

    ports: Annotated[list[ServicePort], KeyedBy("port"), Field(min_length=1, max_length=16)] | None = None
    """Unset: one port, the Component's `port`."""

    rules = (
        Rule(
            cel=(
                f"!has(self.ports) || self.type in {list(_NODE_PORT_TYPES)}"
                " || self.ports.all(p, !has(p.nodePort))"
            ),
            message=f"ports[].nodePort needs type {' or '.join(_NODE_PORT_TYPES)}",
            holds=lambda wire: (
                wire["type"] in _NODE_PORT_TYPES
                or all("nodePort" not in port for port in wire.get("ports", []))
            ),
            field_path=".ports",
        ),
    )


class ServiceV1Alpha1(ServiceBase):
    type: ServiceTypeV1Alpha1
    slb_spec: Annotated[str, Field(max_length=64, pattern=r"^slb\.[a-z0-9.]+$")] | None = None
    """The Alibaba Cloud SLB instance type for `aliyun-slb` (e.g. slb.s1.small). Gone in v1beta1:
    luoji-slb sizes its own instances; conversion keeps the value in an annotation."""


class ServiceV1Beta1(ServiceBase):
    type: ServiceType


class Ingress(Model):
    host: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        ),
    ]
    paths: Annotated[list[HttpPath], Field(min_length=1, max_length=16)] | None = None
    """Unset: `/`."""
    class_: Annotated[str, Field(min_length=1, max_length=253)] | None = Field(default=None, alias="class")
    """The ingress class; unset: the ClusterProfile's ingressClass."""


class Release(Model):
    """How a new image is released: a strategy by name, with its block when the cluster's
    defaults for that strategy do not fit (the blocks are the Rollout's)."""

    strategy: StrategyName
    rolling: Rolling | None = None
    canary: Canary | None = None
    blue_green: BlueGreen | None = None

    rules = (
        Rule(
            cel=" && ".join(f"(!has(self.{name}) || self.strategy == '{name}')" for name in StrategyName),
            message=f"only the block of the named strategy ({', '.join(StrategyName)}) may be set",
            holds=lambda wire: all(name not in wire or wire["strategy"] == name for name in StrategyName),
        ),
    )


class PatchOperation(enum.StrEnum):
    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"
    MOVE = "move"
    COPY = "copy"
    TEST = "test"


_WITH_FROM = (PatchOperation.MOVE.value, PatchOperation.COPY.value)


class JsonPatch(Model):
    """One RFC 6902 operation."""

    op: PatchOperation
    path: Annotated[str, Field(max_length=1024, pattern=r"^(/.*)?$")]
    value: Annotated[Any, WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True})] = None
    from_: Annotated[str, Field(max_length=1024, pattern=r"^(/.*)?$")] | None = Field(
        default=None, alias="from"
    )

    # No rule about `value`: a field of any JSON type is invisible to CEL, so a missing value
    # is reported when the patch is applied, as the Component's condition.
    rules = (
        Rule(
            cel=f"(self.op in {list(_WITH_FROM)}) == has(self.from)",
            message=f"from is required for op {', '.join(_WITH_FROM)} and not allowed for the others",
            holds=lambda wire: (wire["op"] in _WITH_FROM) == ("from" in wire),
            field_path=".from",
        ),
    )


class Override(Model):
    """A patch applied to rendered objects, for what no field of the spec covers."""

    kind: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Z][A-Za-z0-9]*$")]
    name: ObjectName | None = None
    """Unset: every rendered object of `kind`."""
    strategic_merge: FreeForm | None = None
    json_patch: Annotated[list[JsonPatch], Field(min_length=1, max_length=32)] | None = None

    rules = (exactly_one("strategicMerge", "jsonPatch"),)


Utilization = Annotated[Integer, Field(ge=1, le=1000)]
"""Percent of the containers' requests, averaged over the pods (above 100 when they use more)."""


class Autoscaling(Model):
    """A HorizontalPodAutoscaler (autoscaling/v2) for the workload: it sets the replicas between
    `minReplicas` and `maxReplicas` from its targets, and the controller leaves them to it."""

    min_replicas: Annotated[Integer, Field(ge=1, le=2**31 - 1)] = 1
    max_replicas: Annotated[Integer, Field(ge=1, le=2**31 - 1)]
    cpu_utilization: Utilization | None = None
    """Target average CPU use, in percent of the containers' CPU requests."""
    memory_utilization: Utilization | None = None
    """Target average memory use, in percent of the containers' memory requests."""
    metrics: Annotated[list[FreeForm], Field(min_length=1, max_length=16)] | None = None
    """More targets, as autoscaling/v2 MetricSpecs (`type: Pods`, `Object`, `External`, `Resource`,
    `ContainerResource`), passed to the HorizontalPodAutoscaler as written."""

    rules = (
        Rule(
            cel="self.minReplicas <= self.maxReplicas",
            message="minReplicas must not exceed maxReplicas",
            holds=lambda wire: wire["minReplicas"] <= wire["maxReplicas"],
            field_path=".minReplicas",
        ),
        at_least_one("cpuUtilization", "memoryUtilization", "metrics"),
    )


class ComponentSpecBase(Model):
    """The spec both versions share."""

    workload_type: WorkloadType
    develop_language: Language
    run_type: RunType
    image: Image
    port: Port | None = None
    """The port the server listens on."""
    replicas: Count | None = None
    """Unset: the workload template's default, or the HorizontalPodAutoscaler's count when autoscaled."""
    resources: FreeForm | None = None
    """Container resources (requests, limits); unset: the ClusterProfile's defaultResources."""
    env: Annotated[list[EnvVar], KeyedBy("name"), Field(max_length=128)] | None = None
    probes: Probes | None = None
    ingress: Ingress | None = None
    autoscaling: Autoscaling | None = None
    """Unset: the ClusterProfile's autoscaling when it is switched on and `replicas` is unset."""

    rules = (
        Rule(
            cel=f"self.runType != '{RunType.SERVER}' || has(self.port)",
            message=f"port is required when runType is {RunType.SERVER}",
            holds=lambda wire: wire["runType"] != RunType.SERVER or "port" in wire,
            field_path=".port",
        ),
        requires("ingress", "port"),
        Rule(
            cel="!has(self.replicas) || !has(self.autoscaling)",
            message="replicas and autoscaling exclude each other: the HorizontalPodAutoscaler sets the"
            " replicas between autoscaling.minReplicas and maxReplicas",
            holds=lambda wire: "replicas" not in wire or "autoscaling" not in wire,
            field_path=".autoscaling",
        ),
        Rule(
            cel=f"self.workloadType != '{WorkloadType.DAEMON_SET}' || !has(self.autoscaling)",
            message=f"autoscaling: a {WorkloadType.DAEMON_SET} runs one pod per node and has no replicas"
            f" to scale; use a {WorkloadType.DEPLOYMENT} or {WorkloadType.STATEFUL_SET}",
            holds=lambda wire: wire["workloadType"] != WorkloadType.DAEMON_SET or "autoscaling" not in wire,
            field_path=".autoscaling",
        ),
    )


class ComponentSpecV1Alpha1(ComponentSpecBase):
    """The spec as our users' existing manifests write it.

    v1alpha1 lacks `release` and `overrides`: both came with the Rollout engine, and a frozen old
    version must not grow, or clients written against it would half-understand new objects.
    `autoscaling` is the one exception, in both versions: the five-line manifests written as
    v1alpha1 are the services that need to scale, and a field both versions carry converts as is.
    Conversion keeps them in an annotation, so a v1alpha1 client's read-modify-write keeps them.
    It also keeps `svc.type: aliyun-slb` (luoji-slb in v1beta1) and `svc.slbSpec`.
    """

    svc: ServiceV1Alpha1 | None = None


class ComponentSpecV1Beta1(ComponentSpecBase):
    svc: ServiceV1Beta1 | None = None
    release: Release | None = None
    """Unset: a rolling update with the cluster's defaults."""
    overrides: Annotated[list[Override], Field(max_length=32)] | None = None


class RenderedObject(Model):
    api_version: Annotated[str, Field(min_length=1, max_length=253)]
    kind: Annotated[str, Field(min_length=1, max_length=63)]
    name: ObjectName


class LoadBalancerStatus(Model):
    """The luoji-slb load balancer made for the Component (`svc.type: luoji-slb`)."""

    id: Annotated[str, Field(min_length=1, max_length=253)]
    address: Annotated[str, Field(max_length=253)]


class AutoscalingStatus(Model):
    """The HorizontalPodAutoscaler that sets the workload's replicas. Its replica counts are not
    copied here: they change with the load, and copying them would write this status every time
    the autoscaler moves (`kubectl get hpa` shows them)."""

    horizontal_pod_autoscaler: ObjectName
    min_replicas: Count
    max_replicas: Count
    scaling_active: Boolean | None = None
    """The autoscaler's `ScalingActive` condition: whether it can compute a replica count from its
    metrics; unset until it says."""
    message: Annotated[str, Field(max_length=1024)] | None = None
    """The reason and message of `ScalingActive` (why it cannot, when it cannot)."""


class ComponentStatus(ObservedStatus):
    """When the Component was first rendered and last changed are its conditions' times."""

    objects: Annotated[list[RenderedObject], Field(max_length=64)] | None = None
    """Every object rendered from the Component."""
    load_balancer: LoadBalancerStatus | None = None
    autoscaling: AutoscalingStatus | None = None
    """Set while the Component is autoscaled."""
    rendered_revision: Annotated[str, Field(max_length=128)] | None = None
    """The revision of the cluster's rendering inputs (ClusterProfile and templates) the objects were
    last rendered from: a change of those re-renders the Components a few at a time, moving this."""
    rendered_at: datetime.datetime | None = None
    """When the objects were last rendered from a new revision of the inputs or a new spec."""
    children_shard: ShardName | None = None
    """The shard (`delivery.luojilab.com/controller-id`; empty: the default one) the objects it
    renders were last applied for. A controller of another shard (the Component moved, or its
    objects were rendered before they were labelled) finds and relabels them first."""


class ComponentV1Alpha1(Resource):
    """A service in a few lines: workload type, language, run type, image and port."""

    api_version: Literal["component.luojilab.com/v1alpha1"]
    kind: Literal["Component"]
    spec: ComponentSpecV1Alpha1
    status: ComponentStatus | None = None


class ComponentV1Beta1(Resource):
    """A service in a few lines, with release strategy and overrides when a few lines are not enough."""

    api_version: Literal["component.luojilab.com/v1beta1"]
    kind: Literal["Component"]
    spec: ComponentSpecV1Beta1
    status: ComponentStatus | None = None


COMPONENT = CustomResource(
    group=COMPONENT_GROUP,
    kind="Component",
    plural="components",
    short_names=("comp",),
    versions=(
        Version("v1alpha1", ComponentV1Alpha1, storage=False),
        Version(HUB_VERSION, ComponentV1Beta1),
    ),
    columns=(
        Column("Workload", ".spec.workloadType"),
        Column("Language", ".spec.developLanguage"),
        Column("Image", ".spec.image"),
        Column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        AGE,
    ),
    webhook_conversion=True,
)
