"""ClusterProfile: what differs between clusters, read by the Component templates.

Our clusters differ in Kubernetes version (the Ingress API moved from extensions/v1beta1 to
networking.k8s.io/v1), cloud (load balancer), registry and node pools. Templates read those
differences from the ClusterProfile instead of forking per cluster, so one Component renders
right everywhere.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field

from delivery.api.common import (
    DNS_SUBDOMAIN_PATTERN,
    Boolean,
    Count,
    FreeForm,
    Labels,
    Model,
    ObservedStatus,
    Resource,
    Text,
)
from delivery.api.component import Autoscaling
from delivery.api.definition import AGE, COMPONENT_GROUP, Column, CustomResource, Version
from delivery.api.rules import Rule

Registry = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[^\s/]+(/[^\s/]+)*$")]


class IngressApiVersion(enum.StrEnum):
    NETWORKING_V1 = "networking.k8s.io/v1"
    NETWORKING_V1BETA1 = "networking.k8s.io/v1beta1"  # Kubernetes 1.14 to 1.21
    EXTENSIONS_V1BETA1 = "extensions/v1beta1"  # before 1.14


class LoadBalancerType(enum.StrEnum):
    """What `svc.type: LoadBalancer` becomes in this cluster."""

    SERVICE = "LoadBalancer"  # a Service of type LoadBalancer, served by the cloud provider
    LUOJI_SLB = "luoji-slb"  # our own load balancer service, bound to a NodePort Service


class TolerationOperator(enum.StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(enum.StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(Model):
    key: Annotated[str, Field(min_length=1, max_length=317)] | None = None
    """Unset with operator Exists: tolerate every taint."""
    operator: TolerationOperator = TolerationOperator.EQUAL
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: TaintEffect | None = None
    """Unset: every effect."""
    toleration_seconds: Count | None = None

    rules = (
        Rule(
            cel=f"self.operator != '{TolerationOperator.EXISTS}' || !has(self.value)",
            message=f"value is not allowed with operator {TolerationOperator.EXISTS}",
            holds=lambda wire: wire["operator"] != TolerationOperator.EXISTS or "value" not in wire,
            field_path=".value",
        ),
    )


class AutoscalingByLanguage(Model):
    """A language's own autoscaling defaults (a JVM starts slowly and wants more headroom)."""

    python: Autoscaling | None = None
    go: Autoscaling | None = None
    java: Autoscaling | None = None
    nodejs: Autoscaling | None = None
    php: Autoscaling | None = None


class ProfileAutoscaling(Model):
    """Autoscaling for the Components of this cluster that do not say how many replicas they want.

    A Component's own `autoscaling` is used whole, and one that sets `replicas` keeps that many:
    both win over these defaults. The rest, while `enabled`, get their language's block, else
    `defaults`; a language with neither is not autoscaled. Blocks are taken whole, never merged
    field by field, so every block is checked at apply (minReplicas <= maxReplicas, a target) and
    no mix of two valid blocks can be an invalid one."""

    enabled: Boolean = False
    """The cluster-wide switch; turning it either way re-renders the Components a few at a time."""
    defaults: Autoscaling | None = None
    languages: AutoscalingByLanguage | None = None

    rules = (
        Rule(
            cel="!self.enabled || has(self.defaults) || has(self.languages)",
            message="enabled needs defaults or languages: the autoscaling it applies",
            holds=lambda wire: not wire["enabled"] or "defaults" in wire or "languages" in wire,
            field_path=".enabled",
        ),
    )


class ClusterProfileSpec(Model):
    ingress_class: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """The class of rendered Ingresses; unset: the cluster's default class."""
    ingress_domain: Annotated[str, Field(max_length=200, pattern=DNS_SUBDOMAIN_PATTERN)] | None = None
    """Hosts of Ingresses whose Component names none: `<name>.<namespace>.<ingressDomain>`;
    unset: such an Ingress has no host (it matches every host)."""
    ingress_api_version: IngressApiVersion = IngressApiVersion.NETWORKING_V1
    """The Ingress version to render when the cluster serves it; otherwise the newest it serves."""
    load_balancer_type: LoadBalancerType = LoadBalancerType.SERVICE
    image_registry: Registry | None = None
    """Prefix of images named without a registry (`registry.example.com/team`, no trailing slash)."""
    default_resources: FreeForm | None = None
    """Container resources (requests, limits) of Components that set none."""
    node_selector: Labels | None = None
    tolerations: Annotated[list[Toleration], Field(max_length=32)] | None = None
    autoscaling: ProfileAutoscaling | None = None


GroupVersion = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9.-]+/[a-z0-9]+$")]


class KubernetesVersion(Model):
    """The apiserver's version, as its `/version` says."""

    git_version: Annotated[str, Field(max_length=128)]
    """E.g. `v1.37.2`."""
    minor: Count


class ApiVersions(Model):
    """The version the controller uses of each kind whose version differs between clusters; unset:
    the cluster serves it in no version the controller speaks (a Rollout or Component that needs
    it gets a condition naming it)."""

    ingress: GroupVersion | None = None
    horizontal_pod_autoscaler: GroupVersion | None = None
    http_route: GroupVersion | None = None
    """Gateway API's HTTPRoute: set once its CRDs are installed."""


class ClusterProfileStatus(ObservedStatus):
    """What the controller found this cluster to be (discovery), beside the batch re-render's
    `Rerendered` condition. Written by the Component controller when it changes."""

    server_version: KubernetesVersion | None = None
    api_versions: ApiVersions | None = None
    missing_features: Annotated[list[Text], Field(max_length=16)] | None = None
    """What the CRDs and the controller's writes rely on that this server's version lacks."""


class ClusterProfile(Resource):
    """Per-cluster defaults that Component templates read."""

    api_version: Literal["component.luojilab.com/v1beta1"]
    kind: Literal["ClusterProfile"]
    spec: ClusterProfileSpec
    status: ClusterProfileStatus | None = None


CLUSTER_PROFILE = CustomResource(
    group=COMPONENT_GROUP,
    kind="ClusterProfile",
    plural="clusterprofiles",
    short_names=("cprof",),
    versions=(Version("v1beta1", ClusterProfile),),
    namespaced=False,
    columns=(
        Column("Ingress-Class", ".spec.ingressClass"),
        Column("Load-Balancer", ".spec.loadBalancerType"),
        Column("Registry", ".spec.imageRegistry"),
        Column("Kubernetes", ".status.serverVersion.gitVersion"),
        AGE,
    ),
)
