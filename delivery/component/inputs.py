"""The cluster's rendering inputs, what every Component is rendered with besides its own spec: the
ClusterProfile, the templates (shipped, replaced by the ConfigMap's files) and the Ingress
versions the cluster serves. Their `revision` names them: when it moves, every Component has to
be rendered again (a few at a time, see `batch`).

The cluster's ClusterProfile is the one named `default`, as the controller reads it (a plan
that read another would show changes the controller never makes); without it, every field has
its default.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pydantic import ValidationError

from delivery.api.profile import ClusterProfileSpec
from delivery.component.render import Cluster
from delivery.component.templating import TEMPLATES_CONFIGMAP, TEMPLATES_NAMESPACE, RenderError, TemplateSet
from delivery.kube.api import Kube, Object
from delivery.kube.discovery import INGRESS, Discovery
from delivery.kube.kinds import CLUSTER_PROFILE, CONFIG_MAP

DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Inputs:
    cluster: Cluster
    templates: TemplateSet
    profile_name: str | None = None

    @property
    def revision(self) -> str:
        profile = json.dumps(self.cluster.profile.to_wire(), sort_keys=True)
        served = ",".join(sorted(self.cluster.served_ingress_versions))
        canonical = "\0".join((profile, served, self.templates.digest))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def profile_spec(profile: Object | None) -> ClusterProfileSpec:
    if profile is None:
        return ClusterProfileSpec()
    try:
        return ClusterProfileSpec.model_validate(profile.get("spec") or {})
    except ValidationError as error:
        raise RenderError(f"ClusterProfile {profile['metadata']['name']}: {error}") from error


def templates_of(config_map: Object | None) -> TemplateSet:
    shipped = TemplateSet.shipped()
    if config_map is None:
        return shipped
    return shipped.replace(
        config_map.get("data") or {}, f"ConfigMap {TEMPLATES_NAMESPACE}/{TEMPLATES_CONFIGMAP}"
    )


async def read_inputs(kube: Kube) -> Inputs:
    """The cluster's inputs as they are now; raises RenderError for an invalid ClusterProfile."""
    profile = await kube.get(CLUSTER_PROFILE, None, DEFAULT_PROFILE)
    config_map = await kube.get(CONFIG_MAP, TEMPLATES_NAMESPACE, TEMPLATES_CONFIGMAP)
    served = await Discovery(kube).refresh()
    cluster = Cluster(profile_spec(profile), served.versions.get(INGRESS.kind, frozenset()))
    return Inputs(cluster, templates_of(config_map), profile["metadata"]["name"] if profile else None)
