"""The API: pydantic models that are the schema of every custom resource (see `crdgen`)."""

from __future__ import annotations

from delivery.api.analysis import ANALYSIS_TEMPLATE, CLUSTER_ANALYSIS_TEMPLATE
from delivery.api.component import COMPONENT
from delivery.api.definition import CustomResource
from delivery.api.profile import CLUSTER_PROFILE
from delivery.api.rollout import ROLLOUT

CUSTOM_RESOURCES: tuple[CustomResource, ...] = (
    COMPONENT,
    ROLLOUT,
    ANALYSIS_TEMPLATE,
    CLUSTER_ANALYSIS_TEMPLATE,
    CLUSTER_PROFILE,
)
