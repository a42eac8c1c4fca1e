"""A revision is a pod template: its hash names the ReplicaSet and selects its pods.

The hash is computed from the template alone (canonical JSON), so the same template always gives
the same name: a controller that restarts, or a rollback to an earlier template, finds the
ReplicaSet that already exists instead of making another. When the template uses tracked
ConfigMaps or Secrets (`delivery.rollout.config`), their data's digests are part of the hash too:
the same template with other data is another revision.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from delivery.kube import shard
from delivery.kube.api import Object
from delivery.kube.kinds import REPLICA_SET

HASH_LABEL = "delivery.luojilab.com/pod-template-hash"
ROLLOUT_LABEL = "delivery.luojilab.com/rollout"
TEMPLATE_ANNOTATION = "delivery.luojilab.com/pod-template"
"""On each ReplicaSet: the pod template as the Rollout had it (canonical JSON). The apiserver fills
in defaults in the ReplicaSet's own copy, so `kubectl delivery undo` writes this one back: it hashes
to the same revision, and the existing ReplicaSet is scaled up again instead of a new one made."""
HASH_LENGTH = 10


def _canonical(content: Any) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


def template_hash(template: dict[str, Any], configuration: Mapping[str, str] | None = None) -> str:
    """The revision of `template`; `configuration` ("Kind/name" -> digest of the data) if it
    uses tracked objects. Without them the hash is the template's alone, as it always was."""
    content: Any = {"template": template, "configuration": dict(configuration)} if configuration else template
    return hashlib.sha256(_canonical(content).encode()).hexdigest()[:HASH_LENGTH]


def owner_reference(owner: Object) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def replica_set(
    rollout: Object,
    template: dict[str, Any],
    match_labels: dict[str, str],
    replicas: int,
    revision: str | None = None,
) -> Object:
    """The ReplicaSet of `template` for `rollout`, at `replicas`; `revision` unless it is the
    template's own hash (a template that refers to a revision's configuration copies)."""
    name = rollout["metadata"]["name"]
    revision = revision or template_hash(template)
    pod_template = copy.deepcopy(template)
    pod_labels = {**pod_template.get("metadata", {}).get("labels", {}), HASH_LABEL: revision}
    pod_template.setdefault("metadata", {})["labels"] = pod_labels
    return {
        "apiVersion": REPLICA_SET.api_version,
        "kind": REPLICA_SET.kind,
        "metadata": {
            "name": f"{name}-{revision}",
            "namespace": rollout["metadata"]["namespace"],
            # The Rollout's shard on the ReplicaSet alone: its pods and template hash are the template's.
            "labels": shard.labelled({**pod_labels, ROLLOUT_LABEL: name}, shard.of(rollout)),
            "annotations": {TEMPLATE_ANNOTATION: _canonical(template)},
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {**match_labels, HASH_LABEL: revision}},
            "template": pod_template,
        },
    }
