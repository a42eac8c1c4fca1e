"""How each resource is served, beside its schema: names, versions, columns, subresources.

Each model module declares its `CustomResource`; `crdgen` turns them into CRDs and the webhook
finds the ones converted by webhook here, so neither keeps a list of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from delivery.api.common import Model

DELIVERY_GROUP = "delivery.luojilab.com"
COMPONENT_GROUP = "component.luojilab.com"
"""Components and what renders them (ClusterProfile) keep the group of the original controller."""
CATEGORY = "delivery"
"""`kubectl get delivery` lists every kind of this API."""


@dataclass(frozen=True)
class Column:
    """A column of `kubectl get`."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""


AGE = Column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Version:
    name: str
    model: type[Model]  # the whole object: apiVersion, kind, metadata, spec, status
    storage: bool = True


@dataclass(frozen=True)
class ServiceReference:
    """Where the apiserver reaches the conversion webhook inside a cluster."""

    name: str
    namespace: str
    path: str
    port: int = 443


WEBHOOK_SERVICE = ServiceReference(name="delivery-webhook", namespace="delivery-system", path="/convert")


@dataclass(frozen=True)
class CustomResource:
    group: str
    kind: str
    plural: str
    short_names: tuple[str, ...]
    versions: tuple[Version, ...]
    namespaced: bool = True
    columns: tuple[Column, ...] = (AGE,)
    scalable: bool = False  # the scale subresource: .spec.replicas, .status.hpaReplicas, .status.selector
    webhook_conversion: bool = False  # versions differ in shape: the webhook converts them

    @property
    def name(self) -> str:
        """The CRD's own name."""
        return f"{self.plural}.{self.group}"

    @property
    def singular(self) -> str:
        return self.kind.lower()
