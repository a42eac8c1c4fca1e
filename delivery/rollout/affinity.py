"""`antiAffinity`: the new revision's pods kept off the nodes of the stable revision's pods, by a pod
anti-affinity term injected into the new ReplicaSet's pod template, as Argo Rollouts injects it.

Pure. The term goes on the ReplicaSet, not into the Rollout's template, so the revision's hash
(named from the template alone) is the same with or without it: no restart, no second revision.
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
