"""The Helm chart with the real helm: rendered, linted, installed into the sandbox, and a canary
and a Component released by the controller running under exactly the permissions the chart grants.

The sandbox's pods are simulated (kwok), so the chart's own pods never run. The controller runs
here instead, as the chart's ServiceAccount: with a token the apiserver issued for it and the
arguments the chart's Deployment gives it, so every request a release makes is authorised by the
chart's RBAC, and a missing permission fails the release.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from delivery.api import crdgen
from delivery.api.conversion import convert
from delivery.cli.commands import format_restart_at
from delivery.cli.main import parser
from delivery.component.render import RENDERABLE
from delivery.component.templating import TEMPLATES_CONFIGMAP
from delivery.operator import CONTROLLER_ID_LABEL
from sandbox import build
from sandbox.cluster import AUDITED_READS_NAMESPACE, Sandbox, free_port
from sandbox.versions import HELM
from tests.components import component, wait_condition
from tests.controller import Controller
from tests.rollouts import PROMOTE, apply, events, get, replicas_by_revision, rollout, wait_for
from tests.waiting import eventually

CHART = Path(__file__).resolve().parents[2] / "charts" / "delivery"
SHARD = "helm"
STEPS: list[dict[str, Any]] = [{"setWeight": 40}, {"pause": {}}]
CONVERTED_CRD = "components.component.luojilab.com"
VALIDATING = "delivery-analysis"  # the ValidatingWebhookConfiguration of a release named delivery
RELEASE = "delivery"
V1ALPHA1, V1BETA1 = "component.luojilab.com/v1alpha1", "component.luojilab.com/v1beta1"


def helm(*args: str) -> str:
    result = subprocess.run(
        [str(build.build(HELM) / "helm"), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def render(*values: str, files: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """The chart's objects, as `helm template` renders them with `values` (--set a=b) and `files`."""
    sets = [arg for value in values for arg in ("--set", value)]
    sets += [arg for path in files for arg in ("--values", str(path))]
    output = helm("template", "delivery", str(CHART), "--namespace", "delivery-system", *sets)
    return [document for document in yaml.safe_load_all(output) if document]


def one(
    objects: list[dict[str, Any]], kind: str, namespace: str | None = None, name: str | None = None
) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and (namespace is None or o["metadata"].get("namespace") == namespace)
        and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {namespace or 'any namespace'}"
    return found[0]


def controller_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules of the controller's ClusterRole (the others are for people, aggregated)."""
    rules: list[dict[str, Any]] = one(objects, "ClusterRole", name="delivery")["rules"]
    return rules


def controller_args(deployment: dict[str, Any]) -> list[str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["delivery"]
    args: list[str] = container["args"]
    return args


def test_the_chart_lints_and_its_deployment_runs_delivery_with_what_the_values_say() -> None:
    helm("lint", "--strict", str(CHART))
    objects = render(
        "controllerId=blue",
        "logFormat=json",
        "leaderElection.leaseDuration=20",
        "leaderElection.renewDeadline=12",
        "leaderElection.retryPeriod=3",
        "metrics.port=9090",
    )
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    args = controller_args(deployment)
    parsed = parser().parse_args(args)  # the real CLI accepts exactly what the chart passes
    assert parsed.command == "run"
    assert parsed.controller_id == "blue"
    assert parsed.log_format == "json"
    assert parsed.leader_elect
    assert (parsed.lease_duration, parsed.renew_deadline, parsed.retry_period) == (20, 12, 3)
    assert parsed.lease_name == "delivery-controller-blue"
    assert parsed.lease_namespace == "delivery-system"
    assert parsed.metrics_port == 9090
    # The CRDs are generated pointing at delivery-webhook in delivery-system: a release named
    # `delivery` there is what they already expect.
    assert parsed.webhook == "delivery-system/delivery-webhook"
    service = one(objects, "Service")
    assert service["metadata"]["name"] == "delivery-webhook"
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"webhook": 443, "metrics": 9090}
    secret = one(objects, "Secret")
    assert set(secret["data"]) == {"ca.crt", "tls.crt", "tls.key"}
    # The validating webhook: analysis templates only, on the same Service, out of the way when down.
    assert (
        parsed.validating_webhook
        == VALIDATING
        == one(objects, "ValidatingWebhookConfiguration")["metadata"]["name"]
    )
    (hook,) = one(objects, "ValidatingWebhookConfiguration")["webhooks"]
    assert hook["clientConfig"] == {  # the caBundle is the controller's to write
        "service": {
            "name": "delivery-webhook",
            "namespace": "delivery-system",
            "path": "/validate",
            "port": 443,
        }
    }
    assert hook["rules"] == [
        {
            "apiGroups": ["delivery.luojilab.com"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["analysistemplates", "clusteranalysistemplates"],
            "scope": "*",
        }
    ]
    assert (hook["failurePolicy"], hook["sideEffects"], hook["matchPolicy"]) == (
        "Ignore",
        "None",
        "Equivalent",
    )
    assert hook["timeoutSeconds"] == 5
    assert hook["admissionReviewVersions"] == ["v1"]
    assert (
        one(render("webhook.validation.failurePolicy=Fail"), "ValidatingWebhookConfiguration")["webhooks"][0][
            "failurePolicy"
        ]
        == "Fail"
    )
    for off in ("webhook.validation.enabled=false", "webhook.enabled=false"):
        unvalidated = render(off)
        assert not [o for o in unvalidated if o["kind"] == "ValidatingWebhookConfiguration"]
        assert parser().parse_args(controller_args(one(unvalidated, "Deployment"))).validating_webhook is None
        assert not [
            r for r in controller_rules(unvalidated) if "validatingwebhookconfigurations" in r["resources"]
        ]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": secret["metadata"]["name"]} in [v.get("secret") for v in volumes]
    assert not [o for o in objects if o["kind"] == "ServiceMonitor"]
    monitor = one(render("metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_the_chart_installs_the_crds_the_models_give() -> None:
    output = helm("template", "delivery", str(CHART), "--include-crds")
    installed = [
        doc for doc in yaml.safe_load_all(output) if doc and doc["kind"] == "CustomResourceDefinition"
    ]
    assert sorted(installed, key=lambda crd: crd["metadata"]["name"]) == sorted(
        (yaml.safe_load(text) for text in crdgen.render().values()), key=lambda crd: crd["metadata"]["name"]
    )


def test_the_example_values_give_what_they_say() -> None:
    objects = render(files=(CHART.parents[1] / "examples" / "helm" / "values-production.yaml",))
    deployment = one(objects, "Deployment")
    parsed = parser().parse_args(controller_args(deployment))
    assert parsed.log_format == "json"
    assert parsed.notify_reasons == "RolloutCompleted,RolloutAborted,AnalysisRunFailed"
    pod = deployment["spec"]["template"]["spec"]
    assert {"secretName": "delivery-webhook-cert"} in [volume.get("secret") for volume in pod["volumes"]]
    assert not [o for o in objects if o["kind"] == "Secret"]  # cert-manager's, not Helm's
    validating = one(objects, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert validating["clientConfig"]["service"]["name"] == "delivery-webhook"  # cert-manager's certificate's
    assert validating["failurePolicy"] == "Ignore"
    environment = {variable["name"]: variable for variable in pod["containers"][0]["env"]}
    assert environment["DELIVERY_PROMETHEUS_URL"]["value"].startswith("http://prometheus-operated")
    assert environment["DELIVERY_NOTIFY_SLACK"]["valueFrom"]["secretKeyRef"]["name"] == "delivery-notify"
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_the_chart_refuses_values_that_cannot_work() -> None:
    with pytest.raises(AssertionError, match="logFormat must be one of"):
        render("logFormat=yaml")
    with pytest.raises(AssertionError, match=r"needs leaderElection\.enabled"):
        render("leaderElection.enabled=false")
    with pytest.raises(AssertionError, match="retryPeriod < renewDeadline < leaseDuration"):
        render("leaderElection.renewDeadline=30")
    single = one(render("leaderElection.enabled=false", "replicaCount=1"), "Deployment")
    assert "--leader-elect" not in controller_args(single)


def test_the_egress_values_become_the_controllers_flags() -> None:
    deployment = one(
        render("analysis.egress.allow={10.0.0.0/8,*.svc:9090}", "analysis.egress.deny={10.0.0.0/24}"),
        "Deployment",
    )
    args = controller_args(deployment)
    assert [arg for arg in args if arg.startswith("--analysis-")] == [
        "--analysis-allow=10.0.0.0/8",
        "--analysis-allow=*.svc:9090",
        "--analysis-deny=10.0.0.0/24",
    ]
    assert not [arg for arg in controller_args(one(render(), "Deployment")) if arg.startswith("--analysis-")]


def test_rbac_grants_only_what_the_controller_does() -> None:
    objects = render()
    rules = controller_rules(objects)
    by_resource: dict[str, set[str]] = {}
    for rule in rules:
        assert "*" not in rule["verbs"], rule
        assert "*" not in rule["resources"], rule
        if "resourceNames" not in rule:
            for resource in rule["resources"]:
                by_resource.setdefault(resource, set()).update(rule["verbs"])
    assert not {"namespaces", "nodes", "roles", "clusterroles", "serviceaccounts"} & set(by_resource)
    # Pods listed (spec.restartAt, a failed job metric's exit), patched (a role's ephemeral labels and
    # annotations) and evicted rather than deleted.
    assert (by_resource["pods"], by_resource["pods/eviction"]) == ({"list", "patch"}, {"create"})
    assert all(not {"escalate", "bind", "impersonate", "deletecollection"} & v for v in by_resource.values())
    # Replaced whole and deleted: only what a Component renders and may stop rendering; deleted
    # too, a Rollout's old ReplicaSets beyond its revisionHistoryLimit and a job metric's Jobs.
    renderable = {kind.plural for kind in RENDERABLE.values()}
    deleted = renderable | {"replicasets", "jobs"}
    assert {resource for resource, verbs in by_resource.items() if "delete" in verbs} == deleted
    assert {resource for resource, verbs in by_resource.items() if "update" in verbs} == renderable
    assert by_resource["replicasets"] == {"list", "watch", "create", "patch", "delete"}
    assert "secrets" not in by_resource  # unless asked for: rbac.readSecrets
    reading = controller_rules(render("rbac.readSecrets=true"))
    assert {v for rule in reading if "secrets" in rule["resources"] for v in rule["verbs"]} == {"get"}
    crd_rules = [rule for rule in rules if "customresourcedefinitions" in rule["resources"]]
    assert crd_rules == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "patch"],
            "resourceNames": [CONVERTED_CRD],
        }
    ]
    assert [rule for rule in rules if "validatingwebhookconfigurations" in rule["resources"]] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "verbs": ["get", "patch"],
            "resourceNames": [VALIDATING],
        }
    ]
    election = one(objects, "Role", "delivery-system", name="delivery-leader-election")["rules"]
    assert all(rule["resources"] == ["leases"] for rule in election)
    # Of all ConfigMaps, the templates' one, by name, in the release's namespace only.
    assert "configmaps" not in by_resource
    assert one(objects, "Role", "delivery-system", name="delivery-templates")["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [TEMPLATES_CONFIGMAP],
            "verbs": ["get", "list", "watch"],
        }
    ]
    assert f"--templates=delivery-system/{TEMPLATES_CONFIGMAP}" in controller_args(one(objects, "Deployment"))
    balanced = controller_rules(render("components.loadBalancerEndpoint=http://slb.example"))
    assert {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]} in balanced

    # People get the API through the built-in roles: view only reads, edit writes too.
    view = one(objects, "ClusterRole", name="delivery-aggregate-to-view")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {verb for rule in view["rules"] for verb in rule["verbs"]} == {"get", "list", "watch"}
    assert not [
        o for o in render("rbac.aggregateToDefaultRoles=false") if "aggregate" in o["metadata"]["name"]
    ]

    # With namespaces to watch, what is namespaced is granted only there.
    scoped = render("watchNamespaces={shop,pay}")
    cluster_rules = controller_rules(scoped)
    assert {r for rule in cluster_rules for r in rule["resources"]} == {
        "customresourcedefinitions",
        "validatingwebhookconfigurations",
        "clusterprofiles",
        "clusteranalysistemplates",
    }
    one(scoped, "Role", "delivery-system", name="delivery-templates")
    assert one(scoped, "Role", "shop")["rules"] == one(scoped, "Role", "pay")["rules"]
    assert any("rollouts" in rule["resources"] for rule in one(scoped, "Role", "shop")["rules"])


def test_configuration_tracking_is_granted_only_when_asked_and_never_deletes() -> None:
    default = one(render(), "Deployment")
    assert not [arg for arg in controller_args(default) if arg.startswith("--track-")]
    for values, kinds in (
        (("configTracking.configMaps=true",), {"configmaps"}),
        (("configTracking.configMaps=true", "configTracking.secrets=true"), {"configmaps", "secrets"}),
    ):
        objects = render(*values)
        parsed = parser().parse_args(controller_args(one(objects, "Deployment")))
        assert (parsed.track_configmaps, parsed.track_secrets) == ("configmaps" in kinds, "secrets" in kinds)
        tracked = [
            rule for rule in controller_rules(objects) if set(rule["resources"]) & {"configmaps", "secrets"}
        ]
        # Watched by label, read by name when the cache lacks one a revision used, copies
        # created and handed to their ReplicaSet; never updated, never deleted (the garbage
        # collector removes copies with their ReplicaSets).
        assert tracked == [
            {
                "apiGroups": [""],
                "resources": sorted(kinds),
                "verbs": ["get", "list", "watch", "create", "patch"],
            }
        ]
    scoped = render("configTracking.configMaps=true", "watchNamespaces={shop}")
    assert not [r for rule in controller_rules(scoped) for r in rule["resources"] if r == "configmaps"]
    assert any(rule["resources"] == ["configmaps"] for rule in one(scoped, "Role", "shop")["rules"])


# ---- installed into the sandbox -------------------------------------------------------------


def kubeconfig_for_token(sandbox: Sandbox, token: str, path: Path) -> Path:
    """A kubeconfig that authenticates with a bearer token only (no client certificate)."""
    admin = yaml.safe_load(sandbox.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "chart", "user": {"token": token}}],
        "contexts": [
            {"name": "chart", "context": {"cluster": admin["clusters"][0]["name"], "user": "chart"}}
        ],
        "current-context": "chart",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def installed(sandbox: Sandbox, *values: str, namespace: str = "") -> Iterator[str]:
    """The chart installed as `delivery` in `namespace` (default: one of its own), yielded, and
    uninstalled after."""
    namespace = namespace or f"delivery-{uuid.uuid4().hex[:6]}"
    kubeconfig = f"--kubeconfig={sandbox.kubeconfig}"
    conversion = sandbox.kubectl_run("get", "crd", CONVERTED_CRD, "-o", "jsonpath={.spec.conversion}")
    sets = [arg for value in (f"controllerId={SHARD}", *values) for arg in ("--set", value)]
    notes = helm(
        "install", RELEASE, str(CHART), kubeconfig, "--namespace", namespace, "--create-namespace",
        *sets, "--wait", "--timeout=120s",
    )  # fmt: skip
    assert f"kubectl -n {namespace} get lease delivery-controller-{SHARD}" in notes  # NOTES.txt
    assert f"kubectl get validatingwebhookconfiguration {VALIDATING} " in notes
    try:
        yield namespace
    finally:
        helm("uninstall", RELEASE, kubeconfig, "--namespace", namespace, "--wait", "--timeout=60s")
        sandbox.kubectl_run("delete", "namespace", namespace, "--wait=false")
        # The controller run here pointed the CRD at the release's Service; give it back to
        # whatever served it before (the session's controller, say).
        patch = [{"op": "replace", "path": "/spec/conversion", "value": json.loads(conversion)}]
        sandbox.kubectl_run("patch", "crd", CONVERTED_CRD, "--type=json", "-p", json.dumps(patch))


def deployment_of(sandbox: Sandbox, system: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        sandbox.kubectl_run("get", "deployment", RELEASE, "-n", system, "-o", "json")
    )
    return document


def run_as_chart(sandbox: Sandbox, system: str, workdir: Path, webhook_port: int = 0) -> Controller:
    """The controller as the chart's ServiceAccount (a token from the TokenRequest API), with the
    Deployment's arguments and the webhook certificate from the chart's Secret."""
    deployment = deployment_of(sandbox, system)
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    token = sandbox.kubectl_run("create", "token", account, "-n", system, "--duration=1h").strip()
    kubeconfig = kubeconfig_for_token(sandbox, token, workdir / "chart.kubeconfig")
    secret = json.loads(
        sandbox.kubectl_run("get", "secret", f"{RELEASE}-webhook-tls", "-n", system, "-o", "json")
    )
    certificates = workdir / "webhook"
    certificates.mkdir()
    for key, value in secret["data"].items():
        (certificates / key).write_bytes(base64.b64decode(value))
    args = [
        arg
        for arg in controller_args(deployment)[1:]  # `run` is Controller's
        if not arg.startswith(("--webhook-cert-dir=", "--webhook-port=", "--metrics-port="))
    ]
    controller = Controller(
        sandbox,
        workdir / "delivery.log",
        # The later --kubeconfig wins over the admin one Controller passes first.
        args=(
            f"--kubeconfig={kubeconfig}",
            *args,
            f"--webhook-cert-dir={certificates}",
            f"--webhook-port={webhook_port or free_port()}",
            f"--metrics-port={free_port()}",
            "--identity=helm-test",
        ),
    )
    controller.start()
    eventually(lambda: "conversion webhook at" in controller.tail() or None, timeout=60, what="webhook up")
    return controller


def unvalidated_template(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "unvalidated", "namespace": namespace},
        "spec": {
            "metrics": [
                {"name": "m", "successCondition": "result[0] <", "provider": {"prometheus": {"query": "up"}}}
            ]
        },
    }


def assert_never_refused(controller: Controller) -> None:
    log = controller.log.read_text(errors="replace")
    assert "Forbidden" not in log, controller.tail()
    assert "Not enough permissions" not in log, controller.tail()  # kopf's own requests


def sharded_rollout(namespace: str, image: str) -> dict[str, Any]:
    strategy = {"canary": {"steps": STEPS, "scaleDownDelaySeconds": 0}}
    body = rollout("web", namespace, image, strategy, replicas=5)
    body["metadata"]["labels"] = {CONTROLLER_ID_LABEL: SHARD}
    return body


def release_component(sandbox: Sandbox, namespace: str) -> None:
    """A Component whose Deployment, Service and Ingress are created by server-side apply.
    Written as v1beta1, the stored version: the apiserver cannot reach the release's webhook
    Service in the sandbox, so nothing here may need a conversion."""
    five_lines = convert(component("api", namespace), V1BETA1)
    five_lines["metadata"]["labels"] = {CONTROLLER_ID_LABEL: SHARD}
    apply(sandbox, five_lines)
    wait_condition(sandbox, "api", namespace, "Ready", timeout=90)
    kinds = {obj["kind"] for obj in get(sandbox, "component", "api", namespace)["status"]["objects"]}
    assert kinds == {"Deployment", "Service", "Ingress"}


def can(sandbox: Sandbox, account: str, *request: str) -> bool:
    """`kubectl auth can-i` as the ServiceAccount; its exit status is the answer."""
    result = subprocess.run(
        [
            str(sandbox.kubectl),
            f"--kubeconfig={sandbox.kubeconfig}",
            "auth",
            "can-i",
            f"--as={account}",
            *request,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def _why(verbs: str, group: str, resources: str, reason: str) -> dict[tuple[str, str, str], str]:
    return {(verb, group, resource): reason for verb in verbs.split() for resource in resources.split()}


# What the chart grants and the release in the test below does not use, each with why it is needed.
UNEXERCISED: dict[tuple[str, str, str], str] = {
    **_why(
        "create patch get", "apps", "statefulsets daemonsets",
        "a Component of workloadType StatefulSet or DaemonSet: looked up, then server-side applied, "
        "as the Deployment here",
    ),
    **_why(
        "create get", "delivery.luojilab.com", "rollouts",
        "a Component released progressively renders a Rollout: looked up, then server-side applied",
    ),
    **_why(
        "update", "apps", "deployments statefulsets daemonsets",
        "an adopted workload is replaced whole once, when first rendered in full",
    ),
    **_why(
        "update", "", "services", "an adopted object is replaced whole once, when first rendered in full"
    ),
    **_why(
        "update", "networking.k8s.io", "ingresses",
        "an adopted object is replaced whole once, when first rendered in full",
    ),
    **_why(
        "update", "delivery.luojilab.com", "rollouts",
        "an adopted object is replaced whole once, when first rendered in full",
    ),
    **_why(
        "delete", "apps", "deployments statefulsets daemonsets",
        "what a Component no longer renders is pruned",
    ),
    **_why("delete", "", "services", "what a Component no longer renders is pruned"),
    **_why(
        "patch", "", "pods",
        "a Rollout's canaryMetadata/stableMetadata (activeMetadata/previewMetadata) moved onto running pods",
    ),
    **_why("delete", "networking.k8s.io", "ingresses", "what a Component no longer renders is pruned"),
    **_why("delete", "delivery.luojilab.com", "rollouts", "what a Component no longer renders is pruned"),
    **_why(
        "create get patch update delete", "autoscaling", "horizontalpodautoscalers",
        "a Component with spec.autoscaling renders an HPA: looked up, applied, replaced whole when "
        "adopted, pruned when autoscaling is removed (test_component_autoscaling.py does each)",
    ),
    **_why(
        "delete", "apps", "replicasets",
        "ReplicaSets beyond a Rollout's revisionHistoryLimit (this release makes two revisions)",
    ),
    **_why(
        "get", "delivery.luojilab.com", "analysistemplates clusteranalysistemplates",
        "a Rollout with analysis reads the templates it names",
    ),
    **_why("get patch", "gateway.networking.k8s.io", "httproutes", "Gateway API traffic: backend weights"),
    **_why(
        "get create delete", "batch", "jobs",
        "a job metric's Job per measurement, read back after a restart, deleted once not needed",
    ),
    **_why(
        "patch", "batch", "jobs",
        "a Job relabelled when its Rollout moves to another shard (no Rollout of this release moves)",
    ),
    **_why("patch", "component.luojilab.com", "components", "the load balancer's finalizer (luoji-slb only)"),
}  # fmt: skip


def granted(objects: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(verb, API group, resource) of every rule the controller's ClusterRole and Roles grant,
    whatever the names a rule is limited to."""
    rules = [
        rule
        for o in objects
        if o["kind"] in {"ClusterRole", "Role"} and "aggregate" not in o["metadata"]["name"]
        for rule in o["rules"]
    ]
    return {
        (verb, group, resource)
        for rule in rules
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def used(events: list[dict[str, Any]], user: str) -> set[tuple[str, str, str]]:
    """(verb, API group, resource) of every request of `user` the apiserver audited. A server-side
    apply that made its object (201) was authorised as a create too: audited as the patch it is."""
    asked = set()
    for event in events:
        ref = event.get("objectRef")
        if event["user"]["username"] != user or not ref:
            continue
        group = ref.get("apiGroup", "")
        resource = "/".join(filter(None, (ref["resource"], ref.get("subresource"))))
        asked.add((event["verb"], group, resource))
        if event["verb"] == "patch" and event.get("responseStatus", {}).get("code") == 201:
            asked.add(("create", group, resource))
    return asked


def test_installed_chart_releases_a_canary_and_a_component_under_its_own_rbac(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    # The sandbox audits reads in this namespace's service accounts too: the measure of what the
    # controller used against what the chart grants.
    with installed(sandbox, namespace=AUDITED_READS_NAMESPACE) as system:
        account = released_under_rbac(sandbox, system, namespace, tmp_path)
    asked = used(sandbox.audit_events(), f"system:serviceaccount:{system}:{account}")
    grants = granted(render(f"controllerId={SHARD}"))
    assert asked - grants == set()  # else refused: assert_never_refused would have failed
    assert set(UNEXERCISED) <= grants - asked, "listed as unexercised, but used or no longer granted"
    never_used = grants - asked - set(UNEXERCISED)
    assert never_used == set(), f"granted, never used: {sorted(never_used)}; used: {sorted(asked)}"


def released_under_rbac(sandbox: Sandbox, system: str, namespace: str, tmp_path: Path) -> str:
    """The release made by the controller run as the chart's ServiceAccount, whose name is returned."""
    deployment = deployment_of(sandbox, system)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["status"].get("readyReplicas") == 2  # kwok's pods: helm --wait saw them ready
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    subject = f"system:serviceaccount:{system}:{account}"

    # Least privilege, asked of the apiserver's own authorizer.
    lease = "delivery-controller-helm"
    granted = {
        ("patch", "rollouts/status", "-n", namespace),
        ("create", "replicasets", "-n", namespace),
        ("delete", "replicasets", "-n", namespace),
        ("patch", "services", "-n", namespace),
        ("list", "pods", "-n", namespace),  # spec.restartAt
        ("create", "pods", "--subresource=eviction", "-n", namespace),
        ("patch", "components/status", "-n", namespace),
        ("create", "events", "-n", namespace),
        ("watch", f"configmaps/{TEMPLATES_CONFIGMAP}", "-n", system),
        ("patch", f"customresourcedefinitions/{CONVERTED_CRD}"),
        ("patch", f"validatingwebhookconfigurations/{VALIDATING}"),
        ("create", "leases", "-n", system),
        ("patch", f"leases/{lease}", "-n", system),
    }
    refused = {
        ("delete", "namespaces"),
        ("get", "secrets", "-n", namespace),  # unless rbac.readSecrets
        ("list", "secrets", "-A"),
        ("watch", "secrets", "-n", system),
        ("create", "pods", "-n", namespace),
        ("delete", "pods", "-n", namespace),
        ("update", "replicasets", "-n", namespace),
        ("update", "configmaps", "-n", system),
        ("list", "configmaps", "-A"),
        ("get", "configmaps/someone-elses", "-n", system),
        ("watch", f"configmaps/{TEMPLATES_CONFIGMAP}", "-n", namespace),
        ("list", "nodes"),
        ("patch", "customresourcedefinitions/rollouts.delivery.luojilab.com"),
        ("create", "customresourcedefinitions"),
        ("patch", "validatingwebhookconfigurations/someone-elses"),
        ("create", "validatingwebhookconfigurations"),
        ("patch", "leases/kube-scheduler", "-n", "kube-system"),
        ("patch", "leases/someone-else", "-n", system),
        ("create", "clusterrolebindings"),
        ("create", "serviceaccounts/token", "-n", system),
    }
    assert {request for request in granted if not can(sandbox, subject, *request)} == set()
    assert {request for request in refused if can(sandbox, subject, *request)} == set()

    # A person with the built-in `edit` role in a namespace may release there; `view` only looks.
    developer, auditor = (
        f"system:serviceaccount:{namespace}:developer",
        f"system:serviceaccount:{namespace}:auditor",
    )
    sandbox.kubectl_run(
        "create", "rolebinding", "developer", "-n", namespace, "--clusterrole=edit", f"--user={developer}"
    )
    sandbox.kubectl_run(
        "create", "rolebinding", "auditor", "-n", namespace, "--clusterrole=view", f"--user={auditor}"
    )
    eventually(
        lambda: can(sandbox, developer, "patch", "rollouts", "-n", namespace),
        timeout=30,
        what="edit aggregated",
    )
    assert can(sandbox, developer, "create", "components", "-n", namespace)
    assert can(sandbox, auditor, "list", "rollouts", "-n", namespace)
    assert not can(sandbox, auditor, "patch", "rollouts", "-n", namespace)

    webhook_port = free_port()
    controller = run_as_chart(sandbox, system, tmp_path, webhook_port)
    try:
        crd = json.loads(sandbox.kubectl_run("get", "crd", CONVERTED_CRD, "-o", "json"))
        client_config = crd["spec"]["conversion"]["webhook"]["clientConfig"]
        assert client_config["service"] == {  # patched under the chart's RBAC
            "name": f"{RELEASE}-webhook",
            "namespace": system,
            "path": "/convert",
            "port": 443,
        }
        secret = json.loads(
            sandbox.kubectl_run("get", "secret", f"{RELEASE}-webhook-tls", "-n", system, "-o", "json")
        )
        assert client_config["caBundle"] == secret["data"]["ca.crt"]
        # What the apiserver would do through the Service (which the sandbox cannot route): TLS
        # to the Service's DNS name, trusting only the CRD's caBundle, and a ConversionReview.
        trust = ssl.create_default_context(cadata=base64.b64decode(client_config["caBundle"]).decode())
        stored = convert(component("api", namespace), V1BETA1)
        with httpx.Client(verify=trust, timeout=10) as client:
            answer = client.post(
                f"https://127.0.0.1:{webhook_port}/convert",
                json={
                    "apiVersion": "apiextensions.k8s.io/v1",
                    "kind": "ConversionReview",
                    "request": {"uid": "1", "desiredAPIVersion": V1ALPHA1, "objects": [stored]},
                },
                extensions={"sni_hostname": f"{RELEASE}-webhook.{system}.svc"},
            ).json()["response"]
        assert answer["result"] == {"status": "Success"}
        assert answer["convertedObjects"][0]["apiVersion"] == V1ALPHA1
        validating = json.loads(
            sandbox.kubectl_run("get", "validatingwebhookconfiguration", VALIDATING, "-o", "json")
        )
        (hook,) = validating["webhooks"]
        assert hook["clientConfig"] == {  # the caBundle patched under the chart's RBAC
            "service": {"name": f"{RELEASE}-webhook", "namespace": system, "path": "/validate", "port": 443},
            "caBundle": secret["data"]["ca.crt"],
        }
        # The apiserver cannot reach the Service here, as when no replica answers: an analysis
        # template is written anyway, after at most the webhook's timeout (failurePolicy Ignore).
        started = time.monotonic()
        apply(sandbox, unvalidated_template(namespace))
        assert time.monotonic() - started < hook["timeoutSeconds"] + 5
        holder = eventually(
            lambda: sandbox.kubectl_run(
                "get", "lease", lease, "-n", system, "-o", "jsonpath={.spec.holderIdentity}"
            ),
            timeout=60,
            what="the Lease taken",
        )
        assert holder == "helm-test"

        apply(sandbox, sharded_rollout(namespace, "web:1"))
        first = wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")["stableRevision"]
        apply(sandbox, sharded_rollout(namespace, "web:2"))
        paused = wait_for(sandbox, "web", namespace, timeout=90, phase="Paused", currentStepIndex=1)
        new = paused["canaryRevision"]
        assert replicas_by_revision(sandbox, "web", namespace) == {first: 3, new: 2}
        sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=step")
        wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy", stableRevision=new)
        assert replicas_by_revision(sandbox, "web", namespace) == {first: 0, new: 5}
        assert [reason for reason, _ in events(sandbox, "web", namespace)][-2:] == [
            "RolloutPromoted",
            "RolloutCompleted",
        ]
        # spec.restartAt under the chart's RBAC: the pods listed, then evicted one at a time.
        at = format_restart_at(datetime.datetime.now(datetime.UTC))
        restart = json.dumps({"spec": {"restartAt": at}})
        sandbox.kubectl_run("patch", "rollout", "web", "-n", namespace, "--type=merge", "-p", restart)
        wait_for(sandbox, "web", namespace, timeout=90, restartedAt=at)

        release_component(sandbox, namespace)
    finally:
        controller.stop()
    assert_never_refused(controller)

    # An upgrade keeps the webhook's certificate (Helm looks the Secret up before making one):
    # a new CA would leave the CRD trusting one that no replica serves under until they restart.
    helm(
        "upgrade", RELEASE, str(CHART), f"--kubeconfig={sandbox.kubeconfig}", "--namespace", system,
        "--reuse-values", "--set", "logFormat=json",
    )  # fmt: skip
    upgraded = deployment_of(sandbox, system)
    assert "--log-format=json" in controller_args(upgraded)
    kept = json.loads(
        sandbox.kubectl_run("get", "secret", f"{RELEASE}-webhook-tls", "-n", system, "-o", "json")
    )
    assert kept["data"] == secret["data"]
    return str(account)


def test_with_watch_namespaces_the_controller_works_from_roles_there_only(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    with installed(sandbox, f"watchNamespaces={{{namespace}}}") as system:
        account = deployment_of(sandbox, system)["spec"]["template"]["spec"]["serviceAccountName"]
        subject = f"system:serviceaccount:{system}:{account}"
        assert can(sandbox, subject, "patch", "rollouts", "-n", namespace)
        assert not can(sandbox, subject, "patch", "rollouts", "-n", system)
        assert not can(sandbox, subject, "list", "rollouts", "-A")
        assert can(sandbox, subject, "watch", f"configmaps/{TEMPLATES_CONFIGMAP}", "-n", system)
        assert not can(sandbox, subject, "list", "configmaps", "-n", system)
        controller = run_as_chart(sandbox, system, tmp_path)
        try:
            apply(sandbox, sharded_rollout(namespace, "web:1"))
            wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")
            release_component(sandbox, namespace)
        finally:
            controller.stop()
        assert_never_refused(controller)
