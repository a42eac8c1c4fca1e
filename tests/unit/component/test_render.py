"""Rendering is pure: (Component, cluster, templates) -> objects. What the five lines become, what
each language, run type and ClusterProfile adds, releases, and every way a template can be wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from delivery.api.profile import ClusterProfileSpec, LoadBalancerType
from delivery.component.render import (
    LOAD_BALANCER_ANNOTATION,
    NAME_LABEL,
    Cluster,
    Rendered,
    ingress_api_version,
    render,
)
from delivery.component.templating import RenderError, TemplateSet
from tests.components import FIVE_LINES

SHIPPED = TemplateSet.shipped()


def component(**spec: Any) -> dict[str, Any]:
    """The five-line Component (as v1beta1, what the controller reads), with `spec` changes."""
    return {
        "apiVersion": "component.luojilab.com/v1beta1",
        "kind": "Component",
        "metadata": {"name": "nginx", "namespace": "shop", "uid": "uid-1", "labels": {"team": "shop"}},
        "spec": {**FIVE_LINES, **spec},
    }


def by_kind(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {f"{obj['kind']}/{obj['metadata']['name']}": obj for obj in rendered.objects}


def container(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.workload["spec"]["template"]["spec"]["containers"][0]
    return spec


def test_the_five_lines_become_a_deployment_a_service_and_an_ingress() -> None:
    rendered = render(component(), Cluster(), SHIPPED)
    objects = by_kind(rendered)
    assert sorted(objects) == ["Deployment/nginx", "Ingress/nginx", "Service/nginx"]
    deployment = objects["Deployment/nginx"]
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "nginx"}}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "nginx", NAME_LABEL: "nginx"}
    app = container(rendered)
    assert app["image"] == "python-demo:latest"
    assert app["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert app["readinessProbe"]["tcpSocket"] == {"port": 8080}
    assert {"name": "PYTHONUNBUFFERED", "value": "1"} in app["env"]
    service = objects["Service/nginx"]
    assert service["spec"]["selector"] == {"app": "nginx"}
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]
    backend = objects["Ingress/nginx"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "nginx", "port": {"number": 8080}}}
    for obj in rendered.objects:
        assert obj["metadata"]["namespace"] == "shop"
        assert obj["metadata"]["labels"][NAME_LABEL] == "nginx"
        assert obj["metadata"]["labels"]["team"] == "shop"  # the Component's labels are carried
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("Component", "uid-1", True)


def test_rendering_is_deterministic() -> None:
    assert render(component(), Cluster(), SHIPPED) == render(component(), Cluster(), SHIPPED)


def test_a_worker_has_no_service_and_no_probes_without_a_port() -> None:
    spec = component(runType="worker")
    del spec["spec"]["port"]
    rendered = render(spec, Cluster(), SHIPPED)
    assert [obj["kind"] for obj in rendered.objects] == ["Deployment"]
    assert not any(key.endswith("Probe") for key in container(rendered))


@pytest.mark.parametrize(
    ("language", "env", "probes"),
    [
        ("python", "PYTHONUNBUFFERED", {"readinessProbe", "livenessProbe"}),
        ("java", "JAVA_TOOL_OPTIONS", {"startupProbe", "readinessProbe", "livenessProbe"}),
        ("go", "GOMAXPROCS", {"readinessProbe", "livenessProbe"}),
        ("nodejs", "NODE_ENV", {"readinessProbe", "livenessProbe"}),
        ("php", "PHP_MEMORY_LIMIT", {"readinessProbe", "livenessProbe"}),
    ],
)
def test_each_language_brings_its_defaults(language: str, env: str, probes: set[str]) -> None:
    app = container(render(component(developLanguage=language), Cluster(), SHIPPED))
    assert env in {item["name"] for item in app["env"]}
    assert {key for key in app if key.endswith("Probe")} == probes
    assert app["resources"]["requests"]


def test_java_sizes_its_heap_from_the_memory_limit() -> None:
    app = container(render(component(developLanguage="java"), Cluster(), SHIPPED))
    (options,) = [item["value"] for item in app["env"] if item["name"] == "JAVA_TOOL_OPTIONS"]
    assert "-XX:MaxRAMPercentage=75.0" in options
    assert app["startupProbe"]["failureThreshold"] * app["startupProbe"]["periodSeconds"] >= 300


def test_the_components_own_fields_win_over_the_language_and_the_profile() -> None:
    spec = component(
        env=[{"name": "PYTHONUNBUFFERED", "value": "0"}, {"name": "EXTRA", "value": "x"}],
        resources={"requests": {"cpu": "1"}},
        probes={"readiness": {"path": "/ready", "periodSeconds": 3}, "liveness": {"command": ["true"]}},
        replicas=3,
    )
    profile = ClusterProfileSpec(default_resources={"requests": {"cpu": "50m"}})
    rendered = render(spec, Cluster(profile), SHIPPED)
    app = container(rendered)
    env = {item["name"]: item.get("value") for item in app["env"]}
    assert env["PYTHONUNBUFFERED"] == "0"
    assert env["EXTRA"] == "x"
    assert app["resources"] == {"requests": {"cpu": "1"}}
    assert app["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 3}
    assert app["livenessProbe"] == {"exec": {"command": ["true"]}}
    assert rendered.workload["spec"]["replicas"] == 3


def test_the_cluster_profile_sets_registry_scheduling_and_default_resources() -> None:
    profile = ClusterProfileSpec.model_validate(
        {
            "imageRegistry": "registry.idc1.example.com/apps",
            "defaultResources": {"requests": {"cpu": "50m"}},
            "nodeSelector": {"node-pool": "apps"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "apps", "effect": "NoSchedule"}
            ],
        }
    )
    rendered = render(component(), Cluster(profile), SHIPPED)
    pod = rendered.workload["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.idc1.example.com/apps/python-demo:latest"
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "50m"}}
    assert pod["nodeSelector"] == {"node-pool": "apps"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    named = render(component(image="docker.io/library/python:3"), Cluster(profile), SHIPPED)
    assert container(named)["image"] == "docker.io/library/python:3"  # has a registry: untouched


def test_ingress_class_domain_and_version_come_from_the_profile_and_the_cluster() -> None:
    profile = ClusterProfileSpec(ingress_class="nginx", ingress_domain="apps.example.com")
    v1 = by_kind(render(component(), Cluster(profile), SHIPPED))["Ingress/nginx"]
    assert v1["spec"]["ingressClassName"] == "nginx"
    assert v1["spec"]["rules"][0]["host"] == "nginx.shop.apps.example.com"
    old = Cluster(profile, frozenset({"networking.k8s.io/v1beta1", "extensions/v1beta1"}))
    v1beta1 = by_kind(render(component(), old, SHIPPED))["Ingress/nginx"]
    assert v1beta1["apiVersion"] == "networking.k8s.io/v1beta1"
    assert v1beta1["metadata"]["annotations"] == {"kubernetes.io/ingress.class": "nginx"}
    path = v1beta1["spec"]["rules"][0]["http"]["paths"][0]
    assert path["backend"] == {"serviceName": "nginx", "servicePort": 8080}
    asked = component(ingress={"host": "shop.example.com", "paths": ["/a", "/b"], "class": "internal"})
    ingress = by_kind(render(asked, Cluster(profile), SHIPPED))["Ingress/nginx"]
    assert ingress["spec"]["ingressClassName"] == "internal"
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == ["/a", "/b"]


def test_the_ingress_version_is_the_profiles_when_served_else_the_newest_served() -> None:
    served = {"networking.k8s.io/v1", "networking.k8s.io/v1beta1"}
    assert ingress_api_version("networking.k8s.io/v1beta1", served) == "networking.k8s.io/v1beta1"
    assert ingress_api_version("networking.k8s.io/v1", {"extensions/v1beta1"}) == "extensions/v1beta1"
    assert ingress_api_version("extensions/v1beta1", served) == "networking.k8s.io/v1"


def test_a_load_balancer_becomes_our_own_where_the_profile_says_so() -> None:
    asked = component(svc={"type": "LoadBalancer"})
    cloud = by_kind(render(asked, Cluster(), SHIPPED))["Service/nginx"]
    assert cloud["spec"]["type"] == "LoadBalancer"
    assert "annotations" not in cloud["metadata"]
    ours = Cluster(ClusterProfileSpec(load_balancer_type=LoadBalancerType.LUOJI_SLB))
    service = by_kind(render(asked, ours, SHIPPED))["Service/nginx"]
    assert service["spec"]["type"] == "NodePort"
    assert service["metadata"]["annotations"] == {LOAD_BALANCER_ANNOTATION: "luoji-slb"}


def test_a_release_renders_a_rollout_in_place_of_the_deployment() -> None:
    rendered = render(component(release={"strategy": "canary"}), Cluster(), SHIPPED)
    objects = by_kind(rendered)
    assert "Deployment/nginx" not in objects
    rollout = objects["Rollout/nginx"]
    assert rollout["apiVersion"] == "delivery.luojilab.com/v1alpha1"
    assert rollout["spec"]["selector"] == {"matchLabels": {"app": "nginx"}}
    assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == "python-demo:latest"
    assert rollout["spec"]["strategy"]["canary"]["steps"][0] == {"setWeight": 20}  # the shipped defaults


def test_a_blue_green_release_renders_its_preview_service() -> None:
    rendered = render(component(release={"strategy": "blueGreen"}), Cluster(), SHIPPED)
    objects = by_kind(rendered)
    strategy = objects["Rollout/nginx"]["spec"]["strategy"]["blueGreen"]
    assert (strategy["activeService"], strategy["previewService"]) == ("nginx", "nginx-preview")
    assert objects["Service/nginx-preview"]["spec"]["type"] == "ClusterIP"


def test_a_statefulset_releases_by_partition_and_refuses_blue_green() -> None:
    rendered = render(component(workloadType="StatefulSet"), Cluster(), SHIPPED)
    assert rendered.workload["spec"]["serviceName"] == "nginx"
    assert rendered.workload["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 0}
    released = render(
        component(workloadType="StatefulSet", release={"strategy": "canary"}), Cluster(), SHIPPED
    )
    assert released.workload_kind == "StatefulSet"
    with pytest.raises(RenderError, match="not blueGreen"):
        render(component(workloadType="StatefulSet", release={"strategy": "blueGreen"}), Cluster(), SHIPPED)
    with pytest.raises(RenderError, match="DaemonSet has no release strategy"):
        render(component(workloadType="DaemonSet", release={"strategy": "rolling"}), Cluster(), SHIPPED)


def test_overrides_patch_the_rendered_objects() -> None:
    spec = component(
        release={"strategy": "rolling"},
        overrides=[
            {  # written for the Deployment, applied to the Rollout in its place
                "kind": "Deployment",
                "strategicMerge": {
                    "spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["--fast"]}]}}}
                },
            },
            {
                "kind": "Service",
                "name": "nginx",
                "jsonPatch": [{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}],
            },
        ],
    )
    objects = by_kind(render(spec, Cluster(), SHIPPED))
    app = objects["Rollout/nginx"]["spec"]["template"]["spec"]["containers"][0]
    assert app["args"] == ["--fast"]
    assert app["image"] == "python-demo:latest"  # merged by name, not replaced
    assert objects["Service/nginx"]["metadata"]["annotations"] == {"a": "b"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"kind": "StatefulSet", "strategicMerge": {"spec": {}}}, "matches no rendered object"),
        ({"kind": "Service", "strategicMerge": {"metadata": {"name": "other"}}}, "must not change"),
        ({"kind": "Service", "jsonPatch": [{"op": "remove", "path": "/spec/nothing"}]}, r"overrides\[0\]"),
        ({"kind": "Service", "jsonPatch": [{"op": "add", "path": "/spec/x"}]}, "value"),
    ],
)
def test_an_override_that_cannot_apply_is_an_error(override: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(component(overrides=[override]), Cluster(), SHIPPED)


def broken(name: str, text: str) -> TemplateSet:
    return SHIPPED.replace({name: text}, "ConfigMap delivery-system/component-templates")


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        (broken("pod.yaml.j2", "{% if %}"), r"template pod.yaml.j2 \(from ConfigMap .*\) line 1"),
        (broken("pod.yaml.j2", "spec: {{ nothing }}"), "'nothing' is undefined"),
        (broken("pod.yaml.j2", "spec: {{ name.__class__.__mro__ }}"), "template pod.yaml.j2"),
        (broken("pod.yaml.j2", "a: [b"), "invalid YAML"),
        (
            broken("run-server.yaml.j2", "{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole}"),
            "ClusterRole",
        ),
        (
            broken("run-server.yaml.j2", "{apiVersion: v1, kind: Service, metadata: {}}"),
            "without metadata.name",
        ),
        (broken("workload-Deployment.yaml.j2", ""), "must render one Deployment"),
        (SHIPPED.replace({}, "x").replace({"language-python.yaml.j2": "- a list"}, "y"), "one mapping"),
    ],
)
def test_a_broken_template_is_an_error_that_names_it(templates: TemplateSet, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(component(), Cluster(), templates)


def test_replacing_a_template_changes_the_digest_and_only_that_template() -> None:
    text = SHIPPED.sources["run-worker.yaml.j2"] + "\n{# changed #}\n"
    replaced = SHIPPED.replace({"run-worker.yaml.j2": text, "README": "ignored"}, "ConfigMap x/y")
    assert replaced.digest != SHIPPED.digest
    assert replaced.sources.keys() == SHIPPED.sources.keys()
    assert render(component(), Cluster(), replaced) == render(component(), Cluster(), SHIPPED)


def test_render_does_not_modify_its_input() -> None:
    spec = component(overrides=[{"kind": "Service", "strategicMerge": {"spec": {"type": "NodePort"}}}])
    before = copy.deepcopy(spec)
    render(spec, Cluster(), SHIPPED)
    assert spec == before
