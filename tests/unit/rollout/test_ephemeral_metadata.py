"""canaryMetadata/stableMetadata (previewMetadata/activeMetadata) and the injected anti-affinity on
ReplicaSets that exist, as Argo Rollouts moves them (delivery/rollout/metadata.py, pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from delivery.api.rollout import AntiAffinity, PodMetadata
from delivery.rollout.affinity import resynced, with_anti_affinity
from delivery.rollout.metadata import EPHEMERAL_ANNOTATION, moved, recorded, roles, sync
from delivery.rollout.plan import InvalidSpec, plan_of
from delivery.rollout.revision import HASH_LABEL

CANARY = PodMetadata.model_validate({"labels": {"role": "canary"}, "annotations": {"note": "new"}})
STABLE = PodMetadata.model_validate({"labels": {"role": "stable"}})
REQUIRED = AntiAffinity.model_validate({"requiredDuringSchedulingIgnoredDuringExecution": {}})
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "web:2"}]},
}


def replicaset(
    revision: str,
    *,
    labels: dict[str, str] | None = None,
    injected: Any = None,
    replicas: int = 2,
    generation: int = 1,
    observed: int = 1,
    affinity: Any = None,
) -> dict[str, Any]:
    annotations = {EPHEMERAL_ANNOTATION: json.dumps(injected)} if injected is not None else {}
    spec: dict[str, Any] = {"containers": [{"name": "app"}]}
    if affinity is not None:
        spec["affinity"] = affinity
    return {
        "metadata": {
            "name": f"web-{revision}",
            "namespace": "ns",
            "labels": {HASH_LABEL: revision},
            "annotations": annotations,
            "generation": generation,
        },
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": "web", HASH_LABEL: revision, **(labels or {})}},
                "spec": spec,
            },
        },
        "status": {"replicas": replicas, "observedGeneration": observed},
    }


def test_roles_mid_release_and_once_promoted() -> None:
    revisions = {"a": replicaset("a"), "b": replicaset("b"), "c": replicaset("c")}
    mid = roles(revisions, current="c", stable="b", new=CANARY, steady=STABLE)
    assert mid == {
        "a": None,
        "b": {"labels": {"role": "stable"}},
        "c": {"labels": {"role": "canary"}, "annotations": {"note": "new"}},
    }
    done = roles(revisions, current="c", stable="c", new=CANARY, steady=STABLE)
    assert done == {"a": None, "b": None, "c": {"labels": {"role": "stable"}}}  # the canary is the stable
    assert roles(revisions, current="a", stable=None, new=CANARY, steady=STABLE)["a"] == {
        "labels": {"role": "stable"}
    }  # the first revision: stable from the start, as Argo


def test_moved_sets_wanted_keys_and_removes_only_what_was_injected() -> None:
    pod = {"labels": {"app": "web", "role": "canary", "sidecar": "istio"}, "annotations": {"note": "new"}}
    patch = moved(
        pod, {"labels": {"role": "canary"}, "annotations": {"note": "new"}}, {"labels": {"role": "stable"}}
    )
    assert patch == {"labels": {"role": "stable"}, "annotations": {"note": None}}  # sidecar untouched
    assert moved({"labels": {"role": "stable"}}, None, {"labels": {"role": "stable"}}) == {}


def test_a_template_change_first_then_the_pods_once_the_replicaset_controller_saw_it() -> None:
    canary = {"labels": {"role": "canary"}}
    stable = {"labels": {"role": "stable"}}
    rs = replicaset("b", labels={"role": "canary"}, injected=canary)
    first = sync(rs, stable)
    assert first.replicaset == {"spec": {"template": {"metadata": {"labels": {"role": "stable"}}}}}
    assert not first.pods  # not in the same reconcile: a pod of the old template may be on its way
    written = replicaset("b", labels={"role": "stable"}, injected=canary, generation=2, observed=1)
    assert sync(written, stable).replicaset is None
    assert not sync(written, stable).pods  # waits for status.observedGeneration
    seen = replicaset("b", labels={"role": "stable"}, injected=canary, generation=2, observed=2)
    step = sync(seen, stable)
    assert step.pods
    assert step.replicaset is None
    assert (step.had, step.wanted) == (canary, stable)
    assert step.record == {
        "metadata": {"annotations": {EPHEMERAL_ANNOTATION: '{"labels":{"role":"stable"}}'}}
    }
    settled = replicaset("b", labels={"role": "stable"}, injected=stable, generation=2, observed=2)
    assert sync(settled, stable) == type(step)(had=stable, wanted=stable)  # nothing to write


def test_a_replicaset_without_pods_takes_its_template_and_record_in_one_patch() -> None:
    rs = replicaset("a", labels={"role": "stable"}, injected={"labels": {"role": "stable"}}, replicas=0)
    step = sync(rs, None)
    assert step.replicaset == {
        "spec": {"template": {"metadata": {"labels": {"role": None}}}},
        "metadata": {"annotations": {EPHEMERAL_ANNOTATION: None}},
    }
    assert not step.pods


def test_an_unreadable_record_is_none() -> None:
    rs = replicaset("a")
    rs["metadata"]["annotations"][EPHEMERAL_ANNOTATION] = "{not json"
    assert recorded(rs) is None


def test_the_injected_anti_affinity_goes_once_the_revision_is_stable_and_follows_a_new_stable() -> None:
    own: dict[str, Any] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
    }
    template = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "affinity": own}}
    injected = with_anti_affinity(template, REQUIRED, stable="a", revision="b", namespace="ns")
    rs = replicaset("b", affinity=injected["spec"]["affinity"])
    assert sync(rs, None, anti_affinity=REQUIRED, stable="a", current=True).replicaset is None  # still right
    promoted = sync(rs, None, anti_affinity=REQUIRED, stable="b", current=True).replicaset
    assert promoted == {"spec": {"template": {"spec": {"affinity": {"podAntiAffinity": None}}}}}  # own kept
    other = sync(rs, None, anti_affinity=REQUIRED, stable="c", current=True).replicaset
    assert other is not None
    (term,) = other["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["labelSelector"]["matchExpressions"][0]["values"] == ["c"]
    assert (
        sync(rs, None, anti_affinity=REQUIRED, stable="b", current=False).replicaset is None
    )  # only the current
    alone = resynced(injected, REQUIRED, stable="b", revision="b", namespace="ns")
    assert alone == own


def test_a_role_label_that_selects_the_pods_is_refused() -> None:
    spec = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": TEMPLATE,
        "strategy": {"canary": {"canaryMetadata": {"labels": {"app": "canary"}}}},
    }
    with pytest.raises(InvalidSpec, match=r"canaryMetadata.labels: app selects"):
        plan_of(spec)


def test_the_controllers_labels_are_refused_at_apply() -> None:
    with pytest.raises(ValueError, match="controller's own"):
        PodMetadata.model_validate({"labels": {HASH_LABEL: "x"}})
