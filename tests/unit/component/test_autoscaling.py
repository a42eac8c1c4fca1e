"""Autoscaling, pure: what an autoscaled Component renders (an HPA, a workload without replicas),
where its autoscaling comes from (its own block, the ClusterProfile's), how the replicas are handed
over, what its status says, how a scale by someone else is told from an edit, and Ready under it."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.api.component import Autoscaling
from delivery.api.profile import ClusterProfileSpec
from delivery.component import autoscaling, drift
from delivery.component.render import Cluster, Rendered, render
from delivery.component.status import READY, held_ready, workload_ready
from delivery.component.templating import RenderError
from delivery.report import Condition
from tests.unit.component.test_render import SHIPPED, by_kind, component

CPU = {"maxReplicas": 6, "cpuUtilization": 70}


def profile(**autoscaling: Any) -> Cluster:
    return Cluster(ClusterProfileSpec.model_validate({"autoscaling": autoscaling}))


def scaler(rendered: Rendered) -> dict[str, Any] | None:
    return by_kind(rendered).get("HorizontalPodAutoscaler/nginx")


def test_an_autoscaled_deployment_renders_an_hpa_aimed_at_it_and_no_replicas() -> None:
    external = {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value"}}}
    block = {"minReplicas": 2, "maxReplicas": 8, "cpuUtilization": 70, "memoryUtilization": 80}
    rendered = render(component(autoscaling={**block, "metrics": [external]}), Cluster(), SHIPPED)
    assert "replicas" not in rendered.workload["spec"]
    hpa = scaler(rendered)
    assert hpa is not None
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["ownerReferences"][0]["name"] == "nginx"
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"},
        "minReplicas": 2,
        "maxReplicas": 8,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            },
            {
                "type": "Resource",
                "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}},
            },
            external,
        ],
    }
    assert rendered.autoscaling == Autoscaling.model_validate({**block, "metrics": [external]})
    assert [obj["kind"] for obj in rendered.objects] == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "Service",
        "Ingress",
    ]


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        ({"workloadType": "StatefulSet"}, {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "nginx"}),
        (
            {"release": {"strategy": "canary"}},
            {"apiVersion": "delivery.luojilab.com/v1alpha1", "kind": "Rollout", "name": "nginx"},
        ),
    ],
)
def test_a_statefulset_and_a_rollout_are_the_hpa_target_too(
    spec: dict[str, Any], target: dict[str, Any]
) -> None:
    rendered = render(component(autoscaling=CPU, **spec), Cluster(), SHIPPED)
    hpa = scaler(rendered)
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"] == target
    assert "replicas" not in rendered.workload["spec"]


def test_without_autoscaling_nothing_changes() -> None:
    rendered = render(component(replicas=3), Cluster(), SHIPPED)
    assert scaler(rendered) is None
    assert rendered.workload["spec"]["replicas"] == 3
    assert rendered.autoscaling is None


def test_the_profile_autoscales_what_sets_no_replicas_with_the_language_block_first() -> None:
    java = {"minReplicas": 2, "maxReplicas": 4, "memoryUtilization": 75}
    cluster = profile(enabled=True, defaults=CPU, languages={"java": java})
    hpa = scaler(render(component(), cluster, SHIPPED))
    assert hpa is not None
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 6)
    hpa = scaler(render(component(developLanguage="java"), cluster, SHIPPED))
    assert hpa is not None
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    own = {"maxReplicas": 9, "cpuUtilization": 50}  # the Component's own block, whole
    hpa = scaler(render(component(developLanguage="java", autoscaling=own), cluster, SHIPPED))
    assert hpa is not None
    assert hpa["spec"]["maxReplicas"] == 9
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    fixed = render(component(replicas=3), cluster, SHIPPED)  # replicas set: not autoscaled
    assert scaler(fixed) is None
    assert fixed.workload["spec"]["replicas"] == 3
    daemons = component(workloadType="DaemonSet", runType="worker")
    del daemons["spec"]["port"]
    assert scaler(render(daemons, cluster, SHIPPED)) is None


def test_the_profile_switch_off_or_no_block_for_the_language_autoscales_nothing() -> None:
    assert scaler(render(component(), profile(enabled=False, defaults=CPU), SHIPPED)) is None
    only_java = profile(enabled=True, languages={"java": CPU})
    assert scaler(render(component(), only_java, SHIPPED)) is None
    assert scaler(render(component(developLanguage="java"), only_java, SHIPPED)) is not None


def test_the_hpa_template_is_replaceable_but_must_aim_at_the_workload() -> None:
    behaviour = (
        SHIPPED.sources["autoscaling.yaml.j2"]
        + "  behavior: {scaleDown: {stabilizationWindowSeconds: 600}}\n"
    )
    replaced = SHIPPED.replace({"autoscaling.yaml.j2": behaviour}, "ConfigMap x/y")
    hpa = scaler(render(component(autoscaling=CPU), Cluster(), replaced))
    assert hpa is not None
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 600}}
    elsewhere = SHIPPED.sources["autoscaling.yaml.j2"].replace(
        "{{ workload | tojson }}", "{kind: Deployment, name: other}"
    )
    with pytest.raises(RenderError, match=r"autoscaling.yaml.j2: spec.scaleTargetRef must be the workload"):
        render(
            component(autoscaling=CPU), Cluster(), SHIPPED.replace({"autoscaling.yaml.j2": elsewhere}, "x")
        )
    with pytest.raises(RenderError, match="must render one HorizontalPodAutoscaler"):
        render(component(autoscaling=CPU), Cluster(), SHIPPED.replace({"autoscaling.yaml.j2": ""}, "x"))


def test_an_autoscaled_workload_has_no_replicas_whatever_a_template_or_override_says() -> None:
    # A cluster's workload template from before autoscaling still renders replicas.
    old = SHIPPED.sources["workload-Deployment.yaml.j2"].replace("{% if not autoscaling %}", "{% if true %}")
    rendered = render(
        component(autoscaling=CPU), Cluster(), SHIPPED.replace({"workload-Deployment.yaml.j2": old}, "x")
    )
    assert "replicas" not in rendered.workload["spec"]
    override = {"kind": "Deployment", "strategicMerge": {"spec": {"replicas": 4}}}
    rendered = render(component(autoscaling=CPU, overrides=[override]), Cluster(), SHIPPED)
    assert "replicas" not in rendered.workload["spec"]


def managed(manager: str, fields: dict[str, Any], operation: str = "Apply") -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "fieldsV1": {"f:spec": fields}}


def deployment(replicas: int | None, *entries: dict[str, Any]) -> dict[str, Any]:
    spec = {} if replicas is None else {"replicas": replicas}
    metadata = {"name": "web", "namespace": "shop", "managedFields": list(entries)}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def test_the_replicas_are_handed_over_only_while_the_controller_holds_them() -> None:
    ours = deployment(8, managed("delivery-component", {"f:replicas": {}, "f:template": {}}))
    desired = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {}},
    }
    assert autoscaling.may_hand_over(desired, ours)
    assert autoscaling.handover(ours, "delivery-component") == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 8},  # the live count: no change, no drop to the default 1
    }
    scaled = deployment(
        8,
        managed("delivery-component", {"f:template": {}}),
        {**managed("kube-controller-manager", {"f:replicas": {}}, "Update"), "subresource": "scale"},
    )
    assert autoscaling.handover(scaled, "delivery-component") is None
    assert not autoscaling.may_hand_over({**desired, "spec": {"replicas": 2}}, ours)  # fixed: ours to apply
    assert not autoscaling.may_hand_over({"metadata": {"name": "web"}}, ours)  # adoption: metadata only
    assert not autoscaling.may_hand_over(desired, deployment(None))


def test_the_status_names_the_autoscaler_and_its_scaling_active_condition_not_its_counts() -> None:
    block = Autoscaling.model_validate({"minReplicas": 2, "maxReplicas": 5, "cpuUtilization": 60})
    assert autoscaling.status(None, "web", None) is None
    assert autoscaling.status(block, "web", None) == {
        "horizontalPodAutoscaler": "web",
        "minReplicas": 2,
        "maxReplicas": 5,
    }
    hpa = {
        "status": {
            "currentReplicas": 3,
            "desiredReplicas": 4,
            "conditions": [
                {
                    "type": "AbleToScale",
                    "status": "True",
                    "reason": "SucceededRescale",
                    "message": "scaled to 4",
                },
                {
                    "type": "ScalingActive",
                    "status": "False",
                    "reason": "FailedGetResourceMetric",
                    "message": "no metrics returned from resource metrics API",
                },
            ],
        }
    }
    assert autoscaling.status(block, "web", hpa) == {
        "horizontalPodAutoscaler": "web",
        "minReplicas": 2,
        "maxReplicas": 5,
        "scalingActive": False,
        "message": "FailedGetResourceMetric: no metrics returned from resource metrics API",
    }
    hpa["status"]["currentReplicas"] = 5  # a scale changes nothing the status carries
    assert autoscaling.status(block, "web", hpa) == autoscaling.status(block, "web", {**hpa})


def test_a_scale_by_someone_else_is_told_from_an_edit() -> None:
    desired = {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "paused": False, "minReadySeconds": 5},
    }
    spec: dict[str, Any] = {"replicas": 3, "minReadySeconds": 5, "revisionHistoryLimit": 10}
    live = {"kind": "Deployment", "metadata": {"name": "web"}, "spec": spec}
    assert drift.scaled(desired, live) == (1, 3)
    edited = {**live, "spec": {**spec, "minReadySeconds": 0}}
    assert drift.scaled(desired, edited) is None  # an edit beside the scale: an update
    assert drift.scaled(desired, {**live, "spec": {**spec, "replicas": 1}}) is None  # holds
    assert drift.scaled(desired, None) is None
    assert drift.scaled({**desired, "spec": {"paused": False}}, live) is None  # autoscaled: not ours


def workload(
    spec: dict[str, Any], status: dict[str, Any], generation: int = 2, kind: str = "Deployment"
) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "w", "generation": generation}, "spec": spec, "status": status}


def test_an_autoscaled_workload_is_ready_while_it_scales_out_and_its_message_has_no_count() -> None:
    scaling_out = {"observedGeneration": 2, "replicas": 5, "availableReplicas": 2, "updatedReplicas": 5}
    ready = workload_ready(workload({"replicas": 5}, scaling_out), minimum=2)
    assert ready == Condition(
        READY, True, "PodsAvailable", "at least 2 pods available, every pod updated (autoscaled)"
    )
    more = {"observedGeneration": 2, "replicas": 7, "availableReplicas": 6, "updatedReplicas": 7}
    assert workload_ready(workload({"replicas": 7}, more), minimum=2) == ready
    assert not workload_ready(workload({"replicas": 5}, scaling_out)).status  # fixed size: 5 are wanted
    releasing = {"observedGeneration": 2, "replicas": 5, "availableReplicas": 4, "updatedReplicas": 2}
    assert not workload_ready(workload({"replicas": 4}, releasing), minimum=2).status  # old pods remain
    starting = {"observedGeneration": 2, "replicas": 2, "availableReplicas": 1, "updatedReplicas": 2}
    assert not workload_ready(workload({"replicas": 2}, starting), minimum=2).status


def test_a_scale_down_of_the_current_template_is_no_leftover() -> None:
    shrinking = {"observedGeneration": 3, "replicas": 3, "availableReplicas": 3, "updatedReplicas": 3}
    ready = workload_ready(workload({"replicas": 1}, shrinking, generation=3))
    assert ready == Condition(READY, True, "PodsAvailable", "1/1 pods available, 1/1 updated")


def component_with_ready(status: str, generation: int = 4, revision: str = "r1") -> dict[str, Any]:
    ready = {
        "type": READY,
        "status": status,
        "reason": "PodsAvailable",
        "message": "1/1 pods available, 1/1 updated",
    }
    return {
        "metadata": {"generation": 4},
        "status": {"renderedRevision": revision, "conditions": [{**ready, "observedGeneration": generation}]},
    }


def test_ready_is_kept_while_the_workload_status_lags_a_scale_only() -> None:
    lagging = workload(
        {"replicas": 1}, {"observedGeneration": 6, "availableReplicas": 1, "updatedReplicas": 1}, 7
    )
    computed = workload_ready(lagging)
    assert not computed.status
    kept = held_ready(computed, component_with_ready("True"), lagging, "r1", template_written=False)
    assert kept == Condition(READY, True, "PodsAvailable", "1/1 pods available, 1/1 updated")
    # Anything but a scale turns NotReady as before: a template written, another spec or inputs,
    # a Ready that was not True, a status that does not lag.
    assert (
        held_ready(computed, component_with_ready("True"), lagging, "r1", template_written=True) == computed
    )
    assert (
        held_ready(
            computed, component_with_ready("True", generation=3), lagging, "r1", template_written=False
        )
        == computed
    )
    assert (
        held_ready(computed, component_with_ready("True"), lagging, "r2", template_written=False) == computed
    )
    assert (
        held_ready(computed, component_with_ready("False"), lagging, "r1", template_written=False) == computed
    )
    current = workload(
        {"replicas": 2}, {"observedGeneration": 7, "availableReplicas": 1, "updatedReplicas": 1}, 7
    )
    failing = workload_ready(current)
    assert held_ready(failing, component_with_ready("True"), current, "r1", template_written=False) == failing
