"""What every resource's model shares: the base class, the value types, conditions.

Every constraint here is written once, as a pydantic type, and reaches the CRDs through
`crdgen`, so the models and the apiserver reject the same objects.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from delivery.api.rules import PERCENT_PATTERN, SECONDS_OR_DURATION_PATTERN, Rule


class Model(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields refused, numbers strict.

    Unknown fields are refused as `kubectl apply` refuses them (strict field validation). Numbers
    and booleans are declared strict (`Integer`, `Boolean`, `Number` and the types built on them)
    because the apiserver refuses `"8080"` for an integer; the model itself is not strict, so
    that enums and timestamps are read from the strings a Kubernetes object carries them as.
    Subclasses list their cross-field `rules`; they become CEL in the CRD and a check here.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def check_rules(self) -> Self:
        if self.rules:
            wire = self.to_wire()
            for rule in self.rules:
                if not rule.holds(wire):
                    raise PydanticCustomError("rule", rule.message, {"field": rule.field_path})
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if cls.rules:
            handler.resolve_ref_schema(json_schema)["x-kubernetes-validations"] = [
                rule.as_crd() for rule in cls.rules
            ]
        return json_schema

    def to_wire(self) -> dict[str, Any]:
        """As the apiserver would store it: camelCase keys, unset optional fields absent."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class KeyedBy:
    """Marks a list whose items are identified by one field, as Kubernetes lists of conditions,
    env vars and ports are: the apiserver refuses two items with the same key
    (`x-kubernetes-list-type: map`), and server-side apply merges such lists item by item.
    `key` is the field's wire name (`metricName`)."""

    key: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.unique, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [self.key]})
        return json_schema

    def unique(self, items: list[Any]) -> list[Any]:
        keys = [getattr(item, to_snake(self.key)) for item in items]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"duplicate {self.key}: {', '.join(map(str, duplicates))}")
        return items


DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
"""A duration as Kubernetes users write it: `30s`, `5m`, `1h30m`, `250ms`."""

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""The name of a Kubernetes object (a DNS subdomain)."""

ServiceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""The name of a Service (a DNS-1035 label: it becomes a DNS name in the cluster)."""

Key = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]
ShardName = Annotated[str, Field(max_length=63)]
"""A shard (a `delivery.luojilab.com/controller-id` label value); empty: the default shard."""
"""A name people choose for a metric or argument and refer to in templates (`{{args.service}}`)."""

Integer = Annotated[int, Strict()]
Boolean = Annotated[bool, Strict()]
Number = Annotated[float, Strict()]
"""A JSON number: an integer is one too, a string never."""
Port = Annotated[Integer, Field(ge=1, le=65535)]
Count = Annotated[Integer, Field(ge=0, le=2**31 - 1)]
Weight = Annotated[Integer, Field(ge=0, le=100)]
"""A percentage of traffic or of replicas."""

Text = Annotated[str, Field(max_length=1024)]
FreeForm = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
]
"""A Kubernetes structure this API passes through untouched (a pod template, resources, a patch)."""

IntOrPercent = Annotated[
    Integer | str, WithJsonSchema({"x-kubernetes-int-or-string": True, "pattern": PERCENT_PATTERN})
]
"""A number of pods (`3`) or a percentage of the desired replicas (`"25%"`)."""

SecondsOrDuration = Annotated[
    Integer | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True, "pattern": SECONDS_OR_DURATION_PATTERN}),
]
"""Whole seconds (`30`, or `"30"`) or a duration (`"30s"`): Argo Rollouts' IntOrString durations
(its format is the rule `delivery.api.rules.seconds_or_duration`)."""

Labels = Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=64)]
Metadata = FreeForm


class Resource(Model):
    """A whole object. Its metadata is the apiserver's business, so the models leave it free-form."""

    metadata: Metadata = Field(default_factory=dict)


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    """One aspect of an object's state, as `kubectl wait --for=condition=...` reads it."""

    type: Annotated[
        str, Field(min_length=1, max_length=316, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")
    ]
    status: ConditionStatus
    reason: Annotated[
        str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    ]
    """A CamelCase word that programs can match on."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """What a person needs to know, in a sentence."""
    last_transition_time: datetime.datetime
    """When `status` last changed (not when the condition was last written)."""
    observed_generation: Count | None = None
    """The `metadata.generation` this condition was computed for."""


class ObservedStatus(Model):
    """What every status says: which generation the controller has seen, and its conditions."""

    observed_generation: Count | None = None
    """The `metadata.generation` of the spec the controller last acted on."""
    conditions: Annotated[list[Condition], KeyedBy("type"), Field(max_length=16)] = Field(
        default_factory=list
    )
