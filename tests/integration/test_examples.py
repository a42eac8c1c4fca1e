"""Every example under examples/ works alone: applied as a user would (`kubectl apply -f FILE -n NS`)
into an empty namespace it reaches Healthy (a Component: Ready), and a new image released through it
becomes the stable revision. The examples run at once, each in its own namespace.

The templates and the ClusterProfile are cluster-wide and used by reference: each is applied as it
is and then used as its comment says (a Rollout gated on the web check, a plan with the profile),
and deleted after. The templates ConfigMap changes every Component of the cluster, so it runs
alone, after the others. examples/helm and examples/prometheus are tested where they are used
(test_helm.py, test_metrics.py).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from delivery.analysis.run import SECRET_CONSENT_LABEL
from delivery.machine import Reason
from delivery.rollout.revision import HASH_LABEL, template_hash
from sandbox.cluster import Sandbox
from tests import loopback, namespaces
from tests.components import wait_condition
from tests.controller import Controller
from tests.integration import app_metrics
from tests.integration.test_plugin import plugin
from tests.rollouts import PROMOTE, apply, events, get, replicas_by_revision, rollout, status, wait_for
from tests.waiting import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HASH = "delivery.luojilab.com/pod-template-hash"
RELEASE_TIMEOUT = 300.0  # the analysis example's step waits 90 s for its judge, on a loaded machine


def kubectl_apply(sandbox: Sandbox, example: str, namespace: str) -> None:
    sandbox.kubectl_run("apply", "-f", str(EXAMPLES / example), "-n", namespace)


def set_image(sandbox: Sandbox, namespace: str, name: str, image: str) -> None:
    """A new image for the Rollout's first container, by the patch its example's comment gives
    (`kubectl set image` knows only the built-in workloads)."""
    path = "/spec/template/spec/containers/0/image"
    body = json.dumps([{"op": "replace", "path": path, "value": image}])
    sandbox.kubectl_run("patch", "rollout", name, "-n", namespace, "--type", "json", "-p", body)


def patch_image(sandbox: Sandbox, namespace: str, component: str, image: str) -> None:
    body = json.dumps({"spec": {"image": image}})
    sandbox.kubectl_run("patch", "component", component, "-n", namespace, "--type", "merge", "-p", body)


def promote(sandbox: Sandbox, namespace: str, name: str) -> None:
    sandbox.kubectl_run("annotate", "rollout", name, "-n", namespace, f"{PROMOTE}=step")


def healthy(sandbox: Sandbox, name: str, namespace: str) -> str:
    """Wait for the first release Healthy; its stable revision."""
    revision: str = wait_for(sandbox, name, namespace, timeout=120, phase="Healthy")["stableRevision"]
    return revision


def paused_at(sandbox: Sandbox, name: str, namespace: str, step: int) -> dict[str, Any]:
    return wait_for(sandbox, name, namespace, timeout=180, phase="Paused", currentStepIndex=step)


def released(sandbox: Sandbox, name: str, namespace: str, old: str, image: str) -> dict[str, Any]:
    """Wait until a revision other than `old` is stable and Healthy; check that it runs `image` on
    every replica and that the old revision is on its way out."""

    def new_stable() -> dict[str, Any] | None:
        current = status(sandbox, name, namespace)
        done = current.get("phase") == "Healthy" and current.get("stableRevision") not in (None, old)
        return current if done else None

    done = eventually(new_stable, timeout=RELEASE_TIMEOUT, what=f"a new revision of {name} Healthy")
    listing = json.loads(
        sandbox.kubectl_run(
            "get", "rs", "-n", namespace, "-l", f"delivery.luojilab.com/rollout={name}", "-o", "json"
        )
    )
    by_revision = {rs["metadata"]["labels"][HASH]: rs for rs in listing["items"]}
    stable = by_revision[done["stableRevision"]]
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert stable["spec"]["replicas"] == get(sandbox, "rollout", name, namespace)["spec"]["replicas"]
    assert old in by_revision
    return done


def selects(sandbox: Sandbox, service: str, namespace: str) -> str | None:
    selector: dict[str, str] = get(sandbox, "service", service, namespace)["spec"]["selector"]
    return selector.get(HASH)


# -- the Rollouts ------------------------------------------------------------------------------------
def canary_nginx(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "rollout-canary-nginx.yaml", namespace)
    old = healthy(sandbox, "checkout", namespace)
    image = "registry.example.com/shop/checkout:2.1.0"
    set_image(sandbox, namespace, "checkout", image)
    paused_at(sandbox, "checkout", namespace, 5)
    annotations = get(sandbox, "ingress", "checkout-canary", namespace)["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "50"
    assert annotations["nginx.ingress.kubernetes.io/canary-by-header"] == "X-Canary"
    promote(sandbox, namespace, "checkout")
    new = released(sandbox, "checkout", namespace, old, image)["stableRevision"]
    assert selects(sandbox, "checkout", namespace) == new


def canary_gatewayapi(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "rollout-canary-gatewayapi.yaml", namespace)
    old = healthy(sandbox, "search", namespace)
    image = "registry.example.com/shop/search:5.1.0"
    set_image(sandbox, namespace, "search", image)
    paused_at(sandbox, "search", namespace, 5)
    refs = get(sandbox, "httproute", "search", namespace)["spec"]["rules"][0]["backendRefs"]
    assert {ref["name"]: ref["weight"] for ref in refs} == {"search": 50, "search-canary": 50}
    promote(sandbox, namespace, "search")
    released(sandbox, "search", namespace, old, image)
    refs = get(sandbox, "httproute", "search", namespace)["spec"]["rules"][0]["backendRefs"]
    assert {ref["name"]: ref["weight"] for ref in refs} == {"search": 100, "search-canary": 0}


def bluegreen(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "rollout-bluegreen.yaml", namespace)
    old = healthy(sandbox, "payments", namespace)
    image = "registry.example.com/shop/payments:7.1.0"
    set_image(sandbox, namespace, "payments", image)
    wait_for(sandbox, "payments", namespace, timeout=120, phase="Paused")
    new = template_hash(get(sandbox, "rollout", "payments", namespace)["spec"]["template"])
    assert (selects(sandbox, "payments", namespace), selects(sandbox, "payments-preview", namespace)) == (
        old,
        new,
    )

    def roles() -> set[tuple[str, str | None]]:
        pods = json.loads(
            sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", "app=payments", "-o", "json")
        )
        return {
            (pod["metadata"]["labels"][HASH_LABEL], pod["metadata"]["labels"].get("role"))
            for pod in pods["items"]
            if not pod["metadata"].get("deletionTimestamp")
        }

    eventually(lambda: roles() == {(old, "active"), (new, "preview")}, timeout=30, what="the pods' roles")
    promote(sandbox, namespace, "payments")
    assert released(sandbox, "payments", namespace, old, image)["stableRevision"] == new
    assert selects(sandbox, "payments", namespace) == new
    eventually(
        lambda: (new, "active") in roles() and (new, "preview") not in roles(), timeout=30, what="active"
    )


def rolling(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "rollout-rolling.yaml", namespace)
    old = healthy(sandbox, "catalog", namespace)
    image = "registry.example.com/shop/catalog:3.2.0"
    set_image(sandbox, namespace, "catalog", image)
    released(sandbox, "catalog", namespace, old, image)


def gates(sandbox: Sandbox, namespace: str) -> None:
    """Held before promotion (its approval service is not there: a no), then opened by a person."""
    kubectl_apply(sandbox, "rollout-gates.yaml", namespace)
    old = healthy(sandbox, "invoices", namespace)
    image = "registry.example.com/shop/invoices:4.1.0"
    set_image(sandbox, namespace, "invoices", image)

    def held() -> dict[str, Any] | None:
        current = status(sandbox, "invoices", namespace)
        waiting = (current.get("gates") or {}).get("waiting") or []
        return current if [w["name"] for w in waiting] == ["release-approval"] else None

    eventually(held, timeout=RELEASE_TIMEOUT, what="invoices held at release-approval")
    opened = plugin(sandbox, namespace, "gate", "open", "invoices", "release-approval")
    assert opened.returncode == 0, opened.stderr
    released(sandbox, "invoices", namespace, old, image)


def canary_analysis(sandbox: Sandbox, namespace: str) -> None:
    app = app_metrics.serve(sandbox, namespace, "shop")
    try:
        kubectl_apply(sandbox, "rollout-canary-analysis.yaml", namespace)
        old = healthy(sandbox, "shop", namespace)
        app.traffic.serve(old)
        image = "registry.example.com/shop:2.5.0"
        set_image(sandbox, namespace, "shop", image)
        app.traffic.serve(template_hash(get(sandbox, "rollout", "shop", namespace)["spec"]["template"]))
        released(sandbox, "shop", namespace, old, image)
    finally:
        app.stop(sandbox)
    reasons = [reason for reason, _ in events(sandbox, "shop", namespace)]
    assert Reason.ANALYSIS_SUCCESSFUL.value in reasons
    assert not {Reason.MEASUREMENT_ERROR.value, Reason.ANALYSIS_FAILED.value} & set(reasons), reasons


def autoscaling(sandbox: Sandbox, namespace: str) -> None:
    """The HPA raises the Rollout to its minimum through the scale subresource (no metrics needed for
    that), and the release splits whatever total it holds by the step's weight."""
    kubectl_apply(sandbox, "rollout-autoscaling.yaml", namespace)
    healthy(sandbox, "cart", namespace)
    old = wait_for(sandbox, "cart", namespace, timeout=120, phase="Healthy", hpaReplicas=4, readyReplicas=4)
    image = "registry.example.com/shop/cart:4.1.0"
    set_image(sandbox, namespace, "cart", image)
    paused_at(sandbox, "cart", namespace, 1)
    new = template_hash(get(sandbox, "rollout", "cart", namespace)["spec"]["template"])

    def halves() -> bool:
        total = get(sandbox, "rollout", "cart", namespace)["spec"]["replicas"]
        canary = -(-total // 2)
        return replicas_by_revision(sandbox, "cart", namespace) == {
            old["stableRevision"]: total - canary,
            new: canary,
        }

    eventually(halves, timeout=60, what="the HPA's total split in halves")
    promote(sandbox, namespace, "cart")
    assert released(sandbox, "cart", namespace, old["stableRevision"], image)["stableRevision"] == new


def config_release(sandbox: Sandbox, namespace: str) -> None:
    """A change of the tracked ConfigMap's data walks the steps: the canary's ReplicaSet reads the
    new data from its copy, the stable's the old from its own; promoted, the new copy is stable's."""
    kubectl_apply(sandbox, "rollout-config.yaml", namespace)
    old = healthy(sandbox, "storefront", namespace)
    body = json.dumps({"data": {"CHECKOUT_V2": "on"}})
    sandbox.kubectl_run(
        "patch", "configmap", "storefront-config", "-n", namespace, "--type", "merge", "-p", body
    )
    new = paused_at(sandbox, "storefront", namespace, 1)["canaryRevision"]
    assert new != old
    for revision, flag in ((old, "off"), (new, "on")):
        pod = get(sandbox, "rs", f"storefront-{revision}", namespace)["spec"]["template"]["spec"]
        assert pod["containers"][0]["envFrom"] == [
            {"configMapRef": {"name": f"storefront-config-{revision}"}}
        ]
        assert (
            get(sandbox, "configmap", f"storefront-config-{revision}", namespace)["data"]["CHECKOUT_V2"]
            == flag
        )
        secret = pod["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"]
        assert secret == f"storefront-credentials-{revision}"
    promote(sandbox, namespace, "storefront")
    done = released(sandbox, "storefront", namespace, old, "registry.example.com/shop/storefront:4.2.0")
    assert done["stableRevision"] == new


def canary_job(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "rollout-canary-job.yaml", namespace)
    old = healthy(sandbox, "api", namespace)
    image = "registry.example.com/api:1.1.0"
    set_image(sandbox, namespace, "api", image)
    released(sandbox, "api", namespace, old, image)
    assert Reason.ANALYSIS_SUCCESSFUL.value in [reason for reason, _ in events(sandbox, "api", namespace)]
    (job,) = json.loads(sandbox.kubectl_run("get", "jobs", "-n", namespace, "-o", "json"))["items"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[-1] == f"http://api-canary.{namespace}/healthz"  # the fieldRef argument filled in


def canary_experiment(sandbox: Sandbox, namespace: str) -> None:
    """The experiment's two ReplicaSets serve like latencies (by their own hashes): the judge passes,
    the release goes on, and the experiment's ReplicaSets are deleted."""
    app = app_metrics.serve(sandbox, namespace, "pay")
    try:
        kubectl_apply(sandbox, "rollout-canary-experiment.yaml", namespace)
        old = healthy(sandbox, "pay", namespace)
        image = "registry.example.com/pay:3.1.0"
        set_image(sandbox, namespace, "pay", image)

        def started() -> list[dict[str, Any]] | None:
            experiment = status(sandbox, "pay", namespace).get("experiment") or {}
            return experiment.get("templates") if experiment.get("revision") not in (None, old) else None

        for template in eventually(started, timeout=120, what="the experiment started"):
            app.traffic.serve(template["podTemplateHash"])
        done = released(sandbox, "pay", namespace, old, image)
    finally:
        app.stop(sandbox)
    assert done["experiment"]["phase"] == "Successful"
    reasons = [reason for reason, _ in events(sandbox, "pay", namespace)]
    assert Reason.EXPERIMENT_SUCCESSFUL.value in reasons
    experiment = "delivery.luojilab.com/experiment"
    eventually(
        lambda: (
            not json.loads(sandbox.kubectl_run("get", "rs", "-n", namespace, "-l", experiment, "-o", "json"))[
                "items"
            ]
        ),
        timeout=60,
        what="the experiment's ReplicaSets deleted",
    )


# -- the Components ------------------------------------------------------------------------------------
def workload_image(sandbox: Sandbox, kind: str, name: str, namespace: str) -> str:
    image: str = get(sandbox, kind, name, namespace)["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def pod_images(sandbox: Sandbox, namespace: str, app: str) -> dict[str, str]:
    listing = json.loads(
        sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json")
    )
    return {pod["metadata"]["name"]: pod["spec"]["containers"][0]["image"] for pod in listing["items"]}


def component_minimal(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "component-minimal.yaml", namespace)
    wait_condition(sandbox, "nginx", namespace, "Ready", timeout=120)
    patch_image(sandbox, namespace, "nginx", "python-demo:2")
    wait_condition(sandbox, "nginx", namespace, "Ready", timeout=120)
    assert workload_image(sandbox, "deployment", "nginx", namespace) == "python-demo:2"
    eventually(
        lambda: set(pod_images(sandbox, namespace, "nginx").values()) == {"python-demo:2"},
        timeout=60,
        what="the old pods gone",
    )


def component_full(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "component-full.yaml", namespace)
    wait_condition(sandbox, "orders", namespace, "Ready", timeout=120)
    old = status(sandbox, "orders", namespace)["stableRevision"]
    image = "registry.example.com/shop/orders:1.4.3"
    patch_image(sandbox, namespace, "orders", image)
    paused_at(sandbox, "orders", namespace, 3)
    promote(sandbox, namespace, "orders")
    released(sandbox, "orders", namespace, old, image)
    wait_condition(sandbox, "orders", namespace, "Ready", timeout=120)
    assert get(sandbox, "service", "orders", namespace)["metadata"]["labels"]["team"] == "shop"


def component_statefulset(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "component-statefulset.yaml", namespace)
    wait_condition(sandbox, "ledger", namespace, "Ready", timeout=120)
    old, new = "registry.example.com/finance/ledger:3.2.0", "registry.example.com/finance/ledger:3.3.0"
    patch_image(sandbox, namespace, "ledger", new)
    at_pause = {"ledger-0": old, "ledger-1": old, "ledger-2": new}
    eventually(
        lambda: pod_images(sandbox, namespace, "ledger") == at_pause, timeout=120, what="one pod released"
    )
    sandbox.kubectl_run(
        "annotate", "component", "ledger", "-n", namespace, "component.luojilab.com/promote=1"
    )
    eventually(
        lambda: set(pod_images(sandbox, namespace, "ledger").values()) == {new},
        timeout=120,
        what="every pod released",
    )
    wait_condition(sandbox, "ledger", namespace, "Ready", timeout=120)


def component_autoscaling(sandbox: Sandbox, namespace: str) -> None:
    """The HPA's count stands through a release: the controller renders no replicas."""
    kubectl_apply(sandbox, "component-autoscaling.yaml", namespace)
    wait_condition(sandbox, "web", namespace, "Ready", timeout=120)
    hpa = get(sandbox, "hpa", "web", namespace)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    eventually(
        lambda: get(sandbox, "deployment", "web", namespace)["spec"]["replicas"] == 2,
        timeout=60,
        what="the HPA at its minReplicas",
    )
    sandbox.kubectl_run("scale", "deployment", "web", "-n", namespace, "--replicas=3")  # as the HPA would
    patch_image(sandbox, namespace, "web", "python-demo:2")
    wait_condition(sandbox, "web", namespace, "Ready", timeout=120)
    deployment = get(sandbox, "deployment", "web", namespace)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "python-demo:2"
    assert deployment["spec"]["replicas"] == 3


def absent(sandbox: Sandbox, kind: str, name: str, namespace: str) -> bool:
    found = sandbox.kubectl_run("get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "name")
    return not found.strip()


def component_unmanaged(sandbox: Sandbox, namespace: str) -> None:
    kubectl_apply(sandbox, "component-unmanaged.yaml", namespace)
    deadline = time.monotonic() + 5  # the controller has seen it well within this, and must not act
    while time.monotonic() < deadline:
        assert absent(sandbox, "deployment", "billing", namespace)
        assert "status" not in get(sandbox, "component", "billing", namespace)
        time.sleep(0.5)
    sandbox.kubectl_run(
        "annotate", "component", "billing", "-n", namespace, "component.luojilab.com/unmanaged-"
    )
    wait_condition(sandbox, "billing", namespace, "Ready", timeout=120)
    image = "registry.example.com/finance/billing:2.0.2"
    patch_image(sandbox, namespace, "billing", image)
    wait_condition(sandbox, "billing", namespace, "Ready", timeout=120)
    assert workload_image(sandbox, "deployment", "billing", namespace) == image


# -- the cluster-wide ones, used by reference ------------------------------------------------------------
TOKEN = "Bearer example-token"  # a made-up credential


@pytest.fixture
def health_endpoint() -> Iterator[str]:
    """A service's health endpoint as the web example reads it: JSON `status`, behind a token."""

    class Handler(loopback.Quiet):
        def do_GET(self) -> None:
            allowed = self.path == "/health" and self.headers.get("Authorization") == TOKEN
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200 if allowed else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) if allowed else 0))
            self.end_headers()
            if allowed:
                self.wfile.write(body)

    with loopback.serving(Handler) as url:
        yield url


def web_check(sandbox: Sandbox, namespace: str, base_url: str) -> None:
    """The ClusterAnalysisTemplate as its comment uses it: a blue-green's pre-promotion check, with
    the Secret it reads, consented to, in the Rollout's namespace."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "health-check",
            "namespace": namespace,
            "labels": {SECRET_CONSENT_LABEL: "true"},
        },
        "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
    }

    def gated(image: str) -> dict[str, Any]:
        check = {"templates": [{"templateName": "health-endpoint", "clusterScope": True}]}
        check["args"] = [{"name": "base-url", "value": base_url}]
        strategy = {"blueGreen": {"activeService": "web", "prePromotionAnalysis": check}}
        return rollout("web", namespace, image, strategy, replicas=2)

    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    apply(sandbox, secret, service, gated("web:1"))
    old = healthy(sandbox, "web", namespace)
    apply(sandbox, gated("web:2"))
    released(sandbox, "web", namespace, old, "web:2")
    assert Reason.ANALYSIS_SUCCESSFUL.value in [reason for reason, _ in events(sandbox, "web", namespace)]


def profile_plan(sandbox: Sandbox, namespace: str) -> None:
    """The ClusterProfile as its comment uses it: applied (changing nothing), then planned."""
    kubectl_apply(sandbox, "component-minimal.yaml", namespace)
    wait_condition(sandbox, "nginx", namespace, "Ready", timeout=120)
    before = get(sandbox, "deployment", "nginx", namespace)["metadata"]["resourceVersion"]
    sandbox.kubectl_run("apply", "-f", str(EXAMPLES / "clusterprofile.yaml"))
    planned = plugin(sandbox, namespace, "plan", "--all", "--profile", str(EXAMPLES / "clusterprofile.yaml"))
    assert planned.returncode == 1, planned.stderr  # 1: something would change
    added = [line for line in planned.stdout.splitlines() if line.startswith("+")]
    assert any("image: registry.idc1.example.com/apps/python-demo:latest" in line for line in added), added
    assert get(sandbox, "deployment", "nginx", namespace)["metadata"]["resourceVersion"] == before


SCENARIOS: dict[str, Callable[[Sandbox, str], None]] = {
    "rollout-canary-nginx.yaml": canary_nginx,
    "rollout-canary-gatewayapi.yaml": canary_gatewayapi,
    "rollout-bluegreen.yaml": bluegreen,
    "rollout-rolling.yaml": rolling,
    "rollout-canary-analysis.yaml": canary_analysis,
    "rollout-gates.yaml": gates,
    "rollout-autoscaling.yaml": autoscaling,
    "rollout-config.yaml": config_release,
    "rollout-canary-job.yaml": canary_job,
    "rollout-canary-experiment.yaml": canary_experiment,
    "component-minimal.yaml": component_minimal,
    "component-full.yaml": component_full,
    "component-statefulset.yaml": component_statefulset,
    "component-unmanaged.yaml": component_unmanaged,
    "component-autoscaling.yaml": component_autoscaling,
    "clusterprofile.yaml": profile_plan,
}


def test_every_example_is_tested_here() -> None:
    files = {path.name for path in EXAMPLES.glob("*.yaml")}
    assert files == {*SCENARIOS, "clusteranalysistemplate-web.yaml"}


def test_every_example_works_alone_and_releases_a_new_image(
    sandbox: Sandbox, api: client.ApiClient, controller: Controller, health_endpoint: str
) -> None:
    """All at once, each in its own namespace; a failure names its example."""
    sandbox.kubectl_run("apply", "-f", str(EXAMPLES / "clusteranalysistemplate-web.yaml"))
    runs = {**SCENARIOS, "clusteranalysistemplate-web.yaml": lambda s, ns: web_check(s, ns, health_endpoint)}
    created = {example: namespaces.create(api, "ex") for example in runs}
    try:
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            futures = {example: pool.submit(run, sandbox, created[example]) for example, run in runs.items()}
        failures = {}
        for example, future in futures.items():
            error = future.exception()
            if error is not None:
                failures[example] = f"{type(error).__name__}: {error}"
        assert not failures, json.dumps(failures, indent=2)
    finally:
        sandbox.kubectl_run("delete", "clusteranalysistemplate", "health-endpoint", "--ignore-not-found")
        sandbox.kubectl_run("delete", "clusterprofile", "private-cloud-1", "--ignore-not-found")
        for namespace in created.values():
            namespaces.delete(api, namespace)


def test_the_templates_configmap_makes_every_pod_non_root(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    """Applied as its comment says, into the controller's namespace (the chart's install makes it);
    removed after, since it changes every Component of the cluster."""
    apply(sandbox, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "delivery-system"}})
    kubectl_apply(sandbox, "component-minimal.yaml", namespace)
    wait_condition(sandbox, "nginx", namespace, "Ready", timeout=120)
    try:
        sandbox.kubectl_run("apply", "-f", str(EXAMPLES / "component-templates" / "configmap.yaml"))

        def non_root() -> bool:
            pod = get(sandbox, "deployment", "nginx", namespace)["spec"]["template"]["spec"]
            return bool(pod.get("securityContext", {}).get("runAsNonRoot"))

        eventually(non_root, timeout=120, what="the pod template non-root")
        wait_condition(sandbox, "nginx", namespace, "Ready", timeout=120)
        patch_image(sandbox, namespace, "nginx", "python-demo:2")
        wait_condition(sandbox, "nginx", namespace, "Ready", timeout=120)
        assert workload_image(sandbox, "deployment", "nginx", namespace) == "python-demo:2"
        assert non_root()
    finally:
        sandbox.kubectl_run(
            "delete", "configmap", "component-templates", "-n", "delivery-system", "--ignore-not-found"
        )
