"""`kubectl delivery plan` on the sandbox: the diff that proposed templates or a proposed ClusterProfile
would make to the live objects, with nothing changed in the cluster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, cast

from kubernetes import client

from delivery.component.drift import stamped
from delivery.component.render import Cluster, render
from delivery.component.templating import TemplateSet
from sandbox.cluster import Sandbox
from tests.integration.test_plugin import plugin

COMPONENT = {
    "apiVersion": "component.luojilab.com/v1beta1",
    "kind": "Component",
    "metadata": {"name": "web"},
    "spec": {
        "workloadType": "Deployment",
        "developLanguage": "python",
        "runType": "server",
        "image": "python-demo:1",
        "port": 8080,
    },
}


def live_component(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(
        "component.luojilab.com", "v1beta1", namespace, "components", COMPONENT
    )
    return cast(dict[str, Any], created)


def apply_as_controller(sandbox: Sandbox, component: dict[str, Any]) -> None:
    """Its objects applied as the controller applies them (the test needs no controller)."""
    objects = render(component, Cluster(), TemplateSet.shipped()).objects
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": [stamped(obj) for obj in objects]})
    subprocess.run(
        [
            str(sandbox.kubectl),
            f"--kubeconfig={sandbox.kubeconfig}",
            "apply",
            "--server-side",
            "--field-manager=delivery",
            "--force-conflicts",
            "-f",
            "-",
        ],
        input=listing,
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_plan_shows_only_what_the_proposed_inputs_change(
    sandbox: Sandbox, crds: None, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    component = live_component(api, namespace)
    apply_as_controller(sandbox, component)
    apps = client.AppsV1Api(api)
    generation = apps.read_namespaced_deployment("web", namespace).metadata.generation

    unchanged = plugin(sandbox, namespace, "plan", "component", "web")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "# 0 of 1 Components would change" in unchanged.stdout

    templates = tmp_path / "templates"
    templates.mkdir()
    shipped = TemplateSet.shipped().sources["language-python.yaml.j2"]
    (templates / "language-python.yaml.j2").write_text(
        shipped.replace("env:\n", 'env:\n  - {name: PLAN_TEST, value: "yes"}\n', 1)
    )
    (templates / "README").write_text("not a template: ignored")
    changed = plugin(sandbox, namespace, "plan", "component", "web", "--templates", str(templates))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert f"+++ planned/Deployment/{namespace}/web" in changed.stdout
    assert "+        - name: PLAN_TEST" in changed.stdout
    assert "Service/" not in changed.stdout  # only what changes is shown
    assert "# 1 of 1 Components would change" in changed.stdout

    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "apiVersion: component.luojilab.com/v1beta1\nkind: ClusterProfile\n"
        "metadata: {name: proposed}\nspec: {nodeSelector: {node-pool: apps}}\n"
    )
    # --all is the namespace's Components, as kubectl's; one the controller leaves alone is not planned.
    hands_off = {
        **COMPONENT,
        "metadata": {"name": "hands-off", "annotations": {"component.luojilab.com/unmanaged": "true"}},
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "component.luojilab.com", "v1beta1", namespace, "components", hands_off
    )
    moved = plugin(sandbox, namespace, "plan", "--all", "--profile", str(profile))
    assert moved.returncode == 1, moved.stdout + moved.stderr
    assert "+        node-pool: apps" in moved.stdout
    assert "# 1 of 1 Components would change" in moved.stdout

    (templates / "pod.yaml.j2").write_text("{{ nowhere.to.be.found }}")
    broken = plugin(sandbox, namespace, "plan", "component", "web", "--templates", str(templates))
    assert broken.returncode == 2
    assert "cannot render: template pod.yaml.j2" in broken.stdout

    # A plan is a dry run: the live Deployment is as it was.
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == generation
    env = apps.read_namespaced_deployment("web", namespace).spec.template.spec.containers[0].env
    assert "PLAN_TEST" not in {item.name for item in env}
