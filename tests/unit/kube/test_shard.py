"""Shards, the pure parts: the selectors every watch sends, the labels each child is made with, and
when a parent's children must be listed and relabelled before anything is decided for it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from delivery.analysis import job
from delivery.analysis.runner import Run
from delivery.api.analysis import Job, JobMetadata
from delivery.api.rollout import AnalysisKind
from delivery.component.render import NAME_LABEL, Cluster, render
from delivery.component.templating import TemplateSet
from delivery.controllers.component import ComponentController
from delivery.controllers.rollout import RolloutController
from delivery.kube import shard
from delivery.kube.api import Kube
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL, replica_set, template_hash
from tests.components import FIVE_LINES

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "web:1"}]},
}

OFFLINE = Kube(None)  # type: ignore[arg-type]  # the watches are only described: nothing is sent


def rollout(controller_id: str | None) -> dict[str, Any]:
    labels = {shard.LABEL: controller_id} if controller_id else {}
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": labels},
    }


def test_a_named_shard_selects_its_label_and_the_default_one_the_unlabelled() -> None:
    assert shard.selector("a") == "delivery.luojilab.com/controller-id=a"
    assert shard.selector(None) == "!delivery.luojilab.com/controller-id"
    assert shard.selector("") == "!delivery.luojilab.com/controller-id"
    assert shard.of_children(ROLLOUT_LABEL, "a") == f"{ROLLOUT_LABEL},delivery.luojilab.com/controller-id=a"
    assert shard.of_children(ROLLOUT_LABEL, None) == f"{ROLLOUT_LABEL},!delivery.luojilab.com/controller-id"


def test_every_watch_but_the_tracked_objects_and_the_cluster_inputs_is_the_shards() -> None:
    rollouts = RolloutController(OFFLINE, 1, tracking=("ConfigMap", "Secret"), controller_id="a")
    selected = {(watch.kind.kind, watch.label_selector) for watch, _handler in rollouts.watches()}
    assert selected == {
        ("Rollout", "delivery.luojilab.com/controller-id=a"),
        ("ReplicaSet", f"{ROLLOUT_LABEL},delivery.luojilab.com/controller-id=a"),
        ("Job", f"{job.JOB_LABEL},delivery.luojilab.com/controller-id=a"),
        ("Service", "delivery.luojilab.com/experiment,delivery.luojilab.com/controller-id=a"),
        ("ConfigMap", "delivery.luojilab.com/track=true"),  # anyone's, used by any shard's Rollouts
        ("ConfigMap", "delivery.luojilab.com/copy-of,delivery.luojilab.com/controller-id=a"),
        ("Secret", "delivery.luojilab.com/track=true"),
        ("Secret", "delivery.luojilab.com/copy-of,delivery.luojilab.com/controller-id=a"),
    }
    components = ComponentController(OFFLINE, 1)
    for watch, _handler in components.watches():
        if watch.kind.kind in ("ClusterProfile", "ConfigMap"):  # the rendering inputs: every shard's
            assert not watch.label_selector
        elif watch.kind.kind in ("Component", "Rollout"):
            assert watch.label_selector == "!delivery.luojilab.com/controller-id"
        else:
            assert watch.label_selector == f"{NAME_LABEL},!delivery.luojilab.com/controller-id"


def test_a_child_is_labelled_with_its_parents_shard_whatever_it_was_given() -> None:
    given = {"app": "web", shard.LABEL: "elsewhere"}
    assert shard.labelled(given, "a") == {"app": "web", shard.LABEL: "a"}
    assert shard.labelled(given, None) == {"app": "web"}
    assert shard.labelled({"app": "web"}, None) == {"app": "web"}


def test_a_replicaset_carries_the_shard_in_its_metadata_only_so_no_pod_restarts() -> None:
    plain = replica_set(rollout(None), TEMPLATE, {"app": "web"}, 2)
    sharded = replica_set(rollout("a"), TEMPLATE, {"app": "web"}, 2)
    assert sharded["metadata"]["labels"][shard.LABEL] == "a"
    assert shard.LABEL not in plain["metadata"]["labels"]
    assert sharded["spec"] == plain["spec"]  # the same pods, the same hash, the same selector
    assert sharded["metadata"]["name"] == plain["metadata"]["name"] == f"web-{template_hash(TEMPLATE)}"
    assert sharded["spec"]["template"]["metadata"]["labels"] == {
        "app": "web",
        HASH_LABEL: template_hash(TEMPLATE),
    }
    # Pods labelled with a shard by their template: the ReplicaSet is where its Rollout is all the same.
    labelled_pods = {"metadata": {"labels": {"app": "web", shard.LABEL: "b"}}, "spec": TEMPLATE["spec"]}
    unsharded = replica_set(rollout(None), labelled_pods, {"app": "web"}, 1)
    assert shard.LABEL not in unsharded["metadata"]["labels"]
    assert unsharded["spec"]["template"]["metadata"]["labels"][shard.LABEL] == "b"


def test_an_analysis_job_is_its_rollouts_shards() -> None:
    run = Run(AnalysisKind.STEP, "abc123", ("smoke",), datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), 1)
    spec = Job(metadata=JobMetadata(labels={shard.LABEL: "x"}), spec={})
    for controller_id in ("a", None):
        body = job.Planned(spec, "web-smoke-1", rollout(controller_id), run, "smoke").body()
        assert shard.of(body) == controller_id
        assert body["metadata"]["labels"][job.JOB_LABEL] == "web"


@pytest.mark.parametrize("controller_id", ["a", None])
def test_everything_a_component_renders_is_its_shards_and_no_pod_template_changes(
    controller_id: str | None,
) -> None:
    labels = {"team": "shop", **({shard.LABEL: controller_id} if controller_id else {})}
    component = {
        "apiVersion": "component.luojilab.com/v1beta1",
        "kind": "Component",
        "metadata": {"name": "nginx", "namespace": "shop", "uid": "uid-1", "labels": labels},
        "spec": {
            **FIVE_LINES,
            "release": {"strategy": "canary"},
            # an override labels the Service with another shard: it is put where the Component is
            "overrides": [
                {"kind": "Service", "strategicMerge": {"metadata": {"labels": {shard.LABEL: "x"}}}}
            ],
        },
    }
    rendered = render(component, Cluster(), TemplateSet.shipped())
    assert {obj["kind"] for obj in rendered.objects} >= {"Rollout", "Service"}
    for obj in rendered.objects:
        assert shard.of(obj) == controller_id, obj["kind"]
        template = (obj.get("spec") or {}).get("template") or {}
        assert shard.LABEL not in ((template.get("metadata") or {}).get("labels") or {})


def test_a_child_is_relabelled_only_where_its_shard_differs() -> None:
    child = {"metadata": {"labels": {ROLLOUT_LABEL: "web"}}}
    assert shard.relabelled(child, "a") == {"metadata": {"labels": {shard.LABEL: "a"}}}
    assert shard.relabelled(child, None) is None
    moved = {"metadata": {"labels": {ROLLOUT_LABEL: "web", shard.LABEL: "a"}}}
    assert shard.relabelled(moved, "b") == {"metadata": {"labels": {shard.LABEL: "b"}}}
    assert shard.relabelled(moved, None) == {"metadata": {"labels": {shard.LABEL: None}}}  # removed
    assert shard.relabelled(moved, "a") is None


@pytest.mark.parametrize(
    ("status", "controller_id", "needed"),
    [
        ({}, "a", False),  # never reconciled: nothing made children (a killed first one: by conflict)
        ({"observedGeneration": 1}, "a", True),  # an earlier version's, or children unlabelled
        ({"observedGeneration": 1}, None, True),  # the default shard's too: one listing, once
        ({"observedGeneration": 1, shard.RECORDED: "a"}, "a", False),  # a steady restart: no request
        ({"observedGeneration": 1, shard.RECORDED: ""}, None, False),
        ({"observedGeneration": 1, shard.RECORDED: "a"}, "b", True),  # moved from a to b
        ({"observedGeneration": 1, shard.RECORDED: "a"}, None, True),  # moved to the default shard
        ({"observedGeneration": 1, shard.RECORDED: ""}, "a", True),  # moved out of the default shard
    ],
)
def test_children_are_listed_when_the_status_does_not_say_they_are_this_shards(
    status: dict[str, Any], controller_id: str | None, needed: bool
) -> None:
    assert shard.needs_relabel(status, controller_id) is needed
    if needed:
        assert not shard.needs_relabel(
            {**status, shard.RECORDED: shard.recorded(controller_id)}, controller_id
        )
