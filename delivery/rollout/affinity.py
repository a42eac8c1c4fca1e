"""`antiAffinity`: the new revision's pods kept off the nodes of the stable revision's pods, by a pod
anti-affinity term injected into the new ReplicaSet's pod template, as Argo Rollouts injects it.

Pure. The term goes on the ReplicaSet, not into the Rollout's template, so the revision's hash
(named from the template alone) is the same with or without it: no restart, no second revision.
On a ReplicaSet that exists, `resynced` says what its affinity should be now (Argo's
`GenerateReplicaSetAffinity`): the term removed once the revision is the stable one, named anew
when the stable is another. A pod's affinity cannot change; only pods made afterwards differ.
"""

from __future__ import annotations

import copy
from typing import Any

from delivery.api.rollout import AntiAffinity
from delivery.rollout.revision import HASH_LABEL

TOPOLOGY = "kubernetes.io/hostname"  # Argo's: by node


def with_anti_affinity(
    pod_template: dict[str, Any],
    rule: AntiAffinity | None,
    *,
    stable: str | None,
    revision: str,
    namespace: str,
) -> dict[str, Any]:
    """`pod_template` of `revision` with the term away from `stable`'s pods added to its own
    anti-affinity; unchanged without a rule, or when `revision` is the stable one (nothing to avoid)."""
    if rule is None or stable is None or stable == revision:
        return pod_template
    term = {
        "labelSelector": {"matchExpressions": [{"key": HASH_LABEL, "operator": "In", "values": [stable]}]},
        "namespaces": [namespace],
        "topologyKey": TOPOLOGY,
    }
    injected = copy.deepcopy(pod_template)
    anti = injected.setdefault("spec", {}).setdefault("affinity", {}).setdefault("podAntiAffinity", {})
    preferred = rule.preferred_during_scheduling_ignored_during_execution
    if preferred is not None:
        weighted = {"weight": preferred.weight, "podAffinityTerm": term}
        anti["preferredDuringSchedulingIgnoredDuringExecution"] = [
            *anti.get("preferredDuringSchedulingIgnoredDuringExecution", []),
            weighted,
        ]
    else:
        anti["requiredDuringSchedulingIgnoredDuringExecution"] = [
            *anti.get("requiredDuringSchedulingIgnoredDuringExecution", []),
            term,
        ]
    return injected


def _injected(term: Any) -> bool:
    """A term we injected: it selects by our revision label (as Argo tells its own by its label)."""
    expressions = ((term or {}).get("labelSelector") or {}).get("matchExpressions") or []
    return any(expression.get("key") == HASH_LABEL for expression in expressions)


def without_injected(affinity: dict[str, Any] | None) -> dict[str, Any] | None:
    """`affinity` less the terms we injected, emptied parts pruned (None when nothing is left)."""
    if not affinity:
        return affinity
    pruned = copy.deepcopy(affinity)
    anti = pruned.get("podAntiAffinity") or {}
    preferred = [
        t
        for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        if not _injected(t.get("podAffinityTerm"))
    ]
    required = [
        t for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [] if not _injected(t)
    ]
    for key, terms in (
        ("preferredDuringSchedulingIgnoredDuringExecution", preferred),
        ("requiredDuringSchedulingIgnoredDuringExecution", required),
    ):
        if terms:
            anti[key] = terms
        else:
            anti.pop(key, None)
    if anti:
        pruned["podAntiAffinity"] = anti
    else:
        pruned.pop("podAntiAffinity", None)
    return pruned or None


def resynced(
    pod_template: dict[str, Any],
    rule: AntiAffinity | None,
    *,
    stable: str | None,
    revision: str,
    namespace: str,
) -> dict[str, Any] | None:
    """The affinity `pod_template` (a ReplicaSet's, perhaps injected into before) should have now."""
    own = copy.deepcopy(pod_template)
    affinity = without_injected((own.get("spec") or {}).get("affinity"))
    own.setdefault("spec", {}).pop("affinity", None)
    if affinity is not None:
        own["spec"]["affinity"] = affinity
    result: dict[str, Any] | None = with_anti_affinity(
        own, rule, stable=stable, revision=revision, namespace=namespace
    )["spec"].get("affinity")
    return result
