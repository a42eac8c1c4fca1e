"""The manifests of the peer benchmark, the same scenario for both controllers (pure).

A basic canary without traffic routing: 2 replicas, `setWeight 50` then a 2 s pause, N Rollouts spread
over M namespaces. Both controllers get the same pod template, the same steps and the same image change,
so a difference in the figures is a difference of the controllers, not of the work asked of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from delivery.kube.shard import LABEL as shard_label

Controller = Literal["delivery", "argo"]

DELIVERY_API = "delivery.luojilab.com/v1alpha1"
ARGO_API = "argoproj.io/v1alpha1"
REPLICAS = 2
IDLE_REPLICAS = 1  # the idle scenario's: kwok makes pods cheap, but 10,000 Rollouts of two are 20,000
PAUSE_SECONDS = 2
STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": f"{PAUSE_SECONDS}s"}}]
FIRST_IMAGE = "app:1"
RELEASED_IMAGE = "app:2"


@dataclass(frozen=True)
class Scenario:
    """N Rollouts in M namespaces named `<prefix>-<m>`, placed round-robin."""

    prefix: str
    rollouts: int
    namespaces: int

    def namespace_names(self) -> list[str]:
        return [f"{self.prefix}-{index}" for index in range(self.namespaces)]

    def placements(self) -> list[tuple[str, str]]:
        """(namespace, name) of every Rollout."""
        names = self.namespace_names()
        return [(names[index % len(names)], f"ro-{index:05d}") for index in range(self.rollouts)]


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _template(name: str, image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def _canary(controller: Controller, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Ours lets the old revision go as soon as the new one is promoted (scaleDownDelaySeconds 0), as
    Argo's basic canary without traffic routing does (its weight approximated by replica counts), so
    both finish the same work."""
    return {"steps": steps, "scaleDownDelaySeconds": 0} if controller == "delivery" else {"steps": steps}


def _rollout(
    controller: Controller,
    namespace: str,
    name: str,
    image: str,
    steps: list[dict[str, Any]],
    *,
    replicas: int,
    history: int | None,
) -> dict[str, Any]:
    """The same Rollout in either controller's API: only the apiVersion and the canary differ.
    `history` is `revisionHistoryLimit` (None: each controller's default, 10 in both)."""
    limit = {} if history is None else {"revisionHistoryLimit": history}
    return {
        "apiVersion": DELIVERY_API if controller == "delivery" else ARGO_API,
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            **limit,
            "selector": {"matchLabels": {"app": name}},
            "template": _template(name, image),
            "strategy": {"canary": _canary(controller, steps)},
        },
    }


def rollouts(
    controller: Controller,
    scenario: Scenario,
    image: str,
    steps: list[dict[str, Any]] = STEPS,
    replicas: int = REPLICAS,
    *,
    history: int | None = None,
) -> list[dict[str, Any]]:
    """Every Rollout of the scenario at `image`: applied again with a new image, it is the release."""
    return [
        _rollout(controller, ns, name, image, steps, replicas=replicas, history=history)
        for ns, name in scenario.placements()
    ]


def shard_ids(count: int) -> tuple[str, ...]:
    """The `--controller-id`s of a run of `count` shards (none: one unsharded controller)."""
    return tuple(f"shard-{index}" for index in range(count))


def shard_of(index: int, shards: tuple[str, ...]) -> str | None:
    """The shard of the scenario's `index`th Rollout: round-robin, so each holds an even share."""
    return shards[index % len(shards)] if shards else None


def sharded(items: list[dict[str, Any]], shards: tuple[str, ...]) -> list[dict[str, Any]]:
    """The Rollouts of `rollouts` labelled with their shards, in the scenario's order (ours only)."""
    return [_in_shard(item, shard_of(index, shards)) for index, item in enumerate(items)]


def _in_shard(item: dict[str, Any], shard: str | None) -> dict[str, Any]:
    if shard is None:
        return item
    metadata = item["metadata"]
    return {**item, "metadata": {**metadata, "labels": {**metadata.get("labels", {}), shard_label: shard}}}


def by_shard(scenario: Scenario, shards: tuple[str, ...]) -> dict[str | None, set[tuple[str, str]]]:
    """The scenario's Rollouts (namespace, name) by the shard that owns them (None: unsharded)."""
    groups: dict[str | None, set[tuple[str, str]]] = {}
    for index, key in enumerate(scenario.placements()):
        groups.setdefault(shard_of(index, shards), set()).add(key)
    return groups


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """One document for `kubectl apply -f`."""
    return {"apiVersion": "v1", "kind": "List", "items": items}


ANALYSIS_TEMPLATE = "prometheus-up"
# The soak's steps: a Prometheus measurement between the weight and the pause, as a real release has.
SOAK_STEPS: list[dict[str, Any]] = [
    {"setWeight": 50},
    {"analysis": {"templates": [{"templateName": ANALYSIS_TEMPLATE, "clusterScope": True}]}},
    {"pause": {"duration": f"{PAUSE_SECONDS}s"}},
]
# The soak's `revisionHistoryLimit`: one old ReplicaSet kept per Rollout. With each controller's
# default (10) and 3 releases per Rollout in the hour, the cluster's ReplicaSets would grow from 1,000
# to 4,000 during the soak, and a controller's memory with them: the soak would measure the cluster's
# growth, not the controller's. With 1, after one warm-up release of every Rollout before the clock
# starts, each release adds one ReplicaSet and deletes one: the objects stay as many, so what grows
# is the controller.
SOAK_HISTORY = 1
SOAK_WARM_IMAGE = "app:2"  # the warm-up release's; the soak's releases are app:3 onwards


def analysis_template(controller: Controller, prometheus: str) -> dict[str, Any]:
    """One Prometheus measurement that always passes: the soak measures the controllers, not the
    metric. Both controllers read the same fields here (only the API group differs)."""
    return {
        "apiVersion": DELIVERY_API if controller == "delivery" else ARGO_API,
        "kind": "ClusterAnalysisTemplate",
        "metadata": {"name": ANALYSIS_TEMPLATE},
        "spec": {
            "metrics": [
                {
                    "name": "up",
                    "successCondition": "result[0] >= 0",
                    "provider": {"prometheus": {"address": prometheus, "query": "vector(1)"}},
                }
            ]
        },
    }
