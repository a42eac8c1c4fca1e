"""Configuration released like an image, on the sandbox: a tracked ConfigMap's or Secret's change
walks the canary's steps, the canary's pods use the new revision's copy and the stable's the old
one, an abort leaves every pod on the old copy; a tracked object gone holds the Rollout with a
condition and starts nothing; copies go with their ReplicaSets."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from delivery.kube.failpoints import ENVIRONMENT
from delivery.rollout.config import COPY_LABEL, TRACK_LABEL
from delivery.rollout.revision import HASH_LABEL
from sandbox.cluster import Sandbox
from tests import namespaces
from tests.controller import Controller
from tests.integration.test_helm import kubeconfig_for_token
from tests.rollouts import ABORT, apply, events, get, in_shard, replicas_by_revision, rollout, wait_for
from tests.waiting import eventually

SHARD = "config"
STEPS: list[dict[str, Any]] = [{"setWeight": 40}, {"pause": {}}]
RELEASE_TIMEOUT = 120.0


@pytest.fixture
def tracking(sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path) -> Iterator[Controller]:
    """A controller of its own shard that tracks ConfigMaps and Secrets."""
    running = Controller.of_shard(
        sandbox,
        tmp_path / "delivery.log",
        SHARD,
        "--track-configmaps",
        "--track-secrets",
        namespace=namespace,
    )
    running.start()
    yield running
    running.stop()


def configuration(kind: str, name: str, namespace: str, value: str) -> dict[str, Any]:
    """A tracked ConfigMap or Secret with one key, `value`."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {TRACK_LABEL: "true"}},
    }
    if kind == "Secret":
        return {**body, "type": "Opaque", "data": {"value": base64.b64encode(value.encode()).decode()}}
    return {**body, "data": {"value": value}}


def value_of(body: dict[str, Any]) -> str:
    value: str = body["data"]["value"]
    return base64.b64decode(value).decode() if body["kind"] == "Secret" else value


def using(
    kind: str, name: str, namespace: str, image: str, steps: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    """A Rollout whose pods read `name` from an environment variable and a volume."""
    body = rollout("web", namespace, image, {"canary": {"steps": steps, "abortScaleDownDelaySeconds": 0,
                                                        "scaleDownDelaySeconds": 0}}, replicas=5)  # fmt: skip
    pod = body["spec"]["template"]["spec"]
    key_ref = "secretKeyRef" if kind == "Secret" else "configMapKeyRef"
    pod["containers"][0]["env"] = [{"name": "VALUE", "valueFrom": {key_ref: {"name": name, "key": "value"}}}]
    source = {"secret": {"secretName": name}} if kind == "Secret" else {"configMap": {"name": name}}
    pod["volumes"] = [{"name": "conf", **source}]
    body["spec"].update(spec)
    return in_shard(body, SHARD)


def referenced(pod_spec: dict[str, Any]) -> set[str]:
    """The names a pod spec's volume and variable refer to (a pod's own token volume aside)."""
    names: set[str] = set()
    for volume in pod_spec.get("volumes") or []:
        if "configMap" in volume:
            names.add(volume["configMap"]["name"])
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
    for variable in pod_spec["containers"][0].get("env") or []:
        ref = variable.get("valueFrom", {})
        names.add((ref.get("configMapKeyRef") or ref.get("secretKeyRef"))["name"])
    return names


def pods_use(sandbox: Sandbox, namespace: str, revision: str) -> set[str]:
    """What the pods of `revision` refer to, all together (each pod must name the same)."""
    listing = json.loads(
        sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", f"{HASH_LABEL}={revision}", "-o", "json")
    )
    assert listing["items"], f"no pods of {revision}"
    return set.union(*(referenced(pod["spec"]) for pod in listing["items"]))


def replicaset(sandbox: Sandbox, namespace: str, revision: str) -> dict[str, Any]:
    return get(sandbox, "rs", f"web-{revision}", namespace)


def copies(sandbox: Sandbox, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
    listing = json.loads(sandbox.kubectl_run("get", kind, "-n", namespace, "-l", COPY_LABEL, "-o", "json"))
    return {item["metadata"]["name"]: item for item in listing["items"]}


def condition(sandbox: Sandbox, namespace: str, type_: str = "ConfigurationReady") -> dict[str, Any] | None:
    conditions = get(sandbox, "rollout", "web", namespace).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == type_), None)


def configured(sandbox: Sandbox, namespace: str) -> tuple[str, str] | None:
    """The ConfigurationReady condition's status and reason."""
    found = condition(sandbox, namespace)
    return (found["status"], found["reason"]) if found else None


def released_anew(sandbox: Sandbox, namespace: str, before: list[str]) -> str | None:
    """The stable revision once it is none of `before` and Healthy."""
    current = get(sandbox, "rollout", "web", namespace)["status"]
    revision: str = current["stableRevision"]
    return revision if revision not in before and current["phase"] == "Healthy" else None


def revisions_left(sandbox: Sandbox, namespace: str, count: int) -> set[str] | None:
    left = set(replicas_by_revision(sandbox, "web", namespace))
    return left if len(left) == count else None


def owned_by_its_replicaset(sandbox: Sandbox, kind: str, namespace: str, name: str, revision: str) -> bool:
    owners = copies(sandbox, kind, namespace)[name]["metadata"].get("ownerReferences", [])
    return [owner["uid"] for owner in owners] == [replicaset(sandbox, namespace, revision)["metadata"]["uid"]]


@pytest.mark.matrix
@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_a_change_of_tracked_data_is_released_through_the_steps_and_an_abort_keeps_the_old_data(
    sandbox: Sandbox, namespace: str, tracking: Controller, kind: str
) -> None:
    apply(sandbox, configuration(kind, "app", namespace, "hello"))
    apply(sandbox, using(kind, "app", namespace, "web:1", STEPS))
    first = wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")["stableRevision"]
    assert configured(sandbox, namespace) == ("True", "Tracked")
    old_copy = f"app-{first}"
    assert referenced(replicaset(sandbox, namespace, first)["spec"]["template"]["spec"]) == {old_copy}
    made = copies(sandbox, kind, namespace)[old_copy]
    assert made["immutable"] is True
    assert value_of(made) == "hello"
    eventually(
        lambda: owned_by_its_replicaset(sandbox, kind, namespace, old_copy, first) or None,
        timeout=30,
        what="the copy handed to its ReplicaSet",
    )

    apply(
        sandbox, configuration(kind, "app", namespace, "bonjour")
    )  # the data only: the template is as it was
    paused = wait_for(sandbox, "web", namespace, timeout=90, phase="Paused", currentStepIndex=1)
    new = paused["canaryRevision"]
    assert new != first
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 3, new: 2}
    new_copy = f"app-{new}"
    assert value_of(copies(sandbox, kind, namespace)[new_copy]) == "bonjour"
    assert value_of(copies(sandbox, kind, namespace)[old_copy]) == "hello"  # immutable, kept for stable
    eventually(
        lambda: pods_use(sandbox, namespace, new) == {new_copy} or None, timeout=60, what="canary pods"
    )
    assert pods_use(sandbox, namespace, first) == {old_copy}  # stable pods keep the old configuration

    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{ABORT}=true")
    aborted = wait_for(sandbox, "web", namespace, timeout=60, phase="Aborted")
    assert aborted["stableRevision"] == first
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 5, new: 0}
    assert pods_use(sandbox, namespace, first) == {old_copy}
    assert referenced(replicaset(sandbox, namespace, first)["spec"]["template"]["spec"]) == {old_copy}
    assert "RolloutAborted" in [reason for reason, _ in events(sandbox, "web", namespace)]


def test_a_tracked_configmap_gone_holds_the_rollout_and_starts_nothing(
    sandbox: Sandbox, namespace: str, tracking: Controller
) -> None:
    apply(sandbox, configuration("ConfigMap", "app", namespace, "hello"))
    apply(sandbox, using("ConfigMap", "app", namespace, "web:1", STEPS))
    first = wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")["stableRevision"]

    sandbox.kubectl_run("delete", "configmap", "app", "-n", namespace)
    eventually(
        lambda: configured(sandbox, namespace) == ("False", "ConfigMapMissing") or None,
        timeout=30,
        what="ConfigurationReady=False",
    )
    held = condition(sandbox, namespace)
    assert held is not None
    assert "ConfigMap app" in held["message"]
    apply(sandbox, using("ConfigMap", "app", namespace, "web:2", STEPS))  # a new image: not released either
    eventually(
        lambda: get(sandbox, "rollout", "web", namespace)["status"]["observedGeneration"] == 2 or None,
        timeout=30,
        what="the new spec seen",
    )
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 5}  # nothing started
    assert wait_for(sandbox, "web", namespace, phase="Healthy")["stableRevision"] == first
    assert "ConfigMapMissing" in [reason for reason, _ in events(sandbox, "web", namespace)]
    assert pods_use(sandbox, namespace, first) == {f"app-{first}"}  # its copy was never the source

    apply(sandbox, configuration("ConfigMap", "app", namespace, "hello"))  # back: the image is released
    paused = wait_for(sandbox, "web", namespace, timeout=90, phase="Paused", currentStepIndex=1)
    assert paused["canaryRevision"] != first
    assert configured(sandbox, namespace) == ("True", "Tracked")


def test_copies_go_with_their_replicasets(sandbox: Sandbox, namespace: str, tracking: Controller) -> None:
    apply(sandbox, configuration("ConfigMap", "app", namespace, "v0"))
    apply(
        sandbox, using("ConfigMap", "app", namespace, "web:1", [{"setWeight": 100}], revisionHistoryLimit=1)
    )
    revisions = [wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")["stableRevision"]]
    for version in ("v1", "v2", "v3"):
        apply(sandbox, configuration("ConfigMap", "app", namespace, version))
        revisions.append(
            eventually(lambda: released_anew(sandbox, namespace, revisions), timeout=90, what=version)
        )
    # The stable and one old revision (which one: by creation second, then name); the others deleted.
    kept = eventually(
        lambda: revisions_left(sandbox, namespace, 2),
        timeout=60,
        what="the history limit",
    )
    assert revisions[-1] in kept
    eventually(
        lambda: set(copies(sandbox, "ConfigMap", namespace)) == {f"app-{r}" for r in kept} or None,
        timeout=60,
        what="the copies of the deleted ReplicaSets collected",
    )


# -- a kill at each write of a configuration release ----------------------------------------------
TRACED = re.compile(r"failpoint write:(\d+)=sleep at (\S+) (\S+)")
KILLED = re.compile(r"failpoint (?:write|written):\d+=kill at (\S+ \S+)")
TRACE_LENGTH = 60  # writes traced: beyond this release's


def of_shard(sandbox: Sandbox, namespace: str, log: Path, failpoints: str = "") -> Controller:
    """A tracking controller of the namespace's own shard, with `failpoints` if given."""
    return Controller.of_shard(
        sandbox,
        log,
        namespace,
        "--track-configmaps",
        "--track-secrets",
        namespace=namespace,
        env={ENVIRONMENT: failpoints} if failpoints else {},
    )


def alive(controller: Controller) -> bool:
    return controller.process is not None and controller.process.alive()


def done(sandbox: Sandbox, namespace: str, first: str) -> str | None:
    """The new revision, once it is stable, Healthy and every copy is its ReplicaSet's alone."""
    current = get(sandbox, "rollout", "web", namespace)["status"]
    revision: str = current["stableRevision"]
    if current["phase"] != "Healthy" or revision == first or current["canaryRevision"] != revision:
        return None
    owned = all(
        owned_by_its_replicaset(sandbox, kind, namespace, f"{name}-{r}", r)
        for kind, name in (("ConfigMap", "app"), ("Secret", "db"))
        for r in (first, revision)
    )
    return revision if owned else None


def release_under(
    sandbox: Sandbox, api: client.ApiClient, logs: Path, failpoints: str
) -> tuple[str, str, str]:
    """A tracked ConfigMap's change released by a controller run under `failpoints`, restarted
    without them if it was killed: the new revision, the request it was killed at ("" if never)
    and the measured controller's log."""
    namespace = namespaces.create(api, prefix="cfgkill")
    try:
        pod_uses_both = using(
            "ConfigMap", "app", namespace, "web:1", [{"setWeight": 50}, {"pause": {"duration": "1s"}}]
        )
        pod_uses_both["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
            {"secretRef": {"name": "db"}}
        ]
        pod_uses_both = in_shard(pod_uses_both, namespace)
        apply(
            sandbox,
            configuration("ConfigMap", "app", namespace, "v1"),
            configuration("Secret", "db", namespace, "s"),
        )
        apply(sandbox, pod_uses_both)
        setup = of_shard(sandbox, namespace, logs / f"{namespace}-setup.log")
        setup.start()
        try:
            first = wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")["stableRevision"]
            eventually(
                lambda: done_first(sandbox, namespace, first), timeout=30, what="the first copies owned"
            )
        finally:
            setup.stop()
        apply(sandbox, configuration("ConfigMap", "app", namespace, "v2"))
        measured = of_shard(sandbox, namespace, logs / f"{namespace}-measured.log", failpoints)
        measured.start()
        running = measured
        try:
            eventually(
                lambda: not alive(measured) or done(sandbox, namespace, first),
                timeout=RELEASE_TIMEOUT,
                what=f"killed at {failpoints} or released",
            )
            text = measured.log.read_text()
            killed = KILLED.search(text)
            if not alive(measured):
                measured.kill()
                assert killed, f"died without its failpoint's line:\n{measured.tail()}"
                running = of_shard(sandbox, namespace, logs / f"{namespace}-restarted.log")
                running.start()
            revision = eventually(
                lambda: done(sandbox, namespace, first), timeout=RELEASE_TIMEOUT, what="released"
            )
        finally:
            running.stop()
            measured.stop()
        # Exactly the two revisions' copies, nothing left over from the kill.
        for kind, name in (("ConfigMap", "app"), ("Secret", "db")):
            assert set(copies(sandbox, kind, namespace)) == {f"{name}-{first}", f"{name}-{revision}"}
        assert set(replicas_by_revision(sandbox, "web", namespace)) == {first, revision}
        return revision, killed[1] if killed else "", measured.log.read_text()
    finally:
        namespaces.delete(api, namespace)


def done_first(sandbox: Sandbox, namespace: str, first: str) -> bool:
    return all(
        owned_by_its_replicaset(sandbox, kind, namespace, f"{name}-{first}", first)
        for kind, name in (("ConfigMap", "app"), ("Secret", "db"))
    )


def test_a_kill_at_each_configuration_write_resumes_to_the_same_release(
    sandbox: Sandbox, api: client.ApiClient, crds: None, tmp_path: Path
) -> None:
    """The writes that make a revision's configuration (each copy's create, the ReplicaSet's,
    each copy handed to its ReplicaSet): killed right before and right after each, a restarted
    controller ends with the same revision, its copies each owned by its ReplicaSet alone, and no
    copy left over."""
    trace = ",".join(f"write:{n}=sleep:0" for n in range(1, TRACE_LENGTH + 1))
    expected, _, log = release_under(sandbox, api, tmp_path, trace)
    writes = [(int(n), method, path) for n, method, path in TRACED.findall(log)]
    configuring = [
        n
        for n, method, path in writes
        if re.search(r"/(configmaps|secrets)(/|$)", path)
        or (method == "POST" and path.endswith("/replicasets"))
    ]
    kinds = Counter(
        (method, path.rstrip("/").split("/")[-1 if method == "POST" else -2])
        for n, method, path in writes
        if n in configuring
    )
    assert kinds == {
        ("POST", "configmaps"): 1,
        ("POST", "secrets"): 1,
        ("POST", "replicasets"): 1,
        ("PATCH", "configmaps"): 1,
        ("PATCH", "secrets"): 1,
    }, writes
    failures = []
    for n in configuring:
        for when in ("write", "written"):
            revision, killed, _ = release_under(sandbox, api, tmp_path, f"{when}:{n}=kill")
            if not killed:
                failures.append(f"{when}:{n}: never reached")
            if revision != expected:
                failures.append(f"{when}:{n} (killed at {killed}): released {revision}, not {expected}")
    assert not failures, failures


# -- a read refused ----------------------------------------------------------------------------------
def rules(*grants: tuple[str, str, str]) -> list[dict[str, Any]]:
    """RBAC rules from (API group, resources, verbs), the last two space-separated."""
    return [
        {"apiGroups": [group], "resources": res.split(), "verbs": verbs.split()}
        for group, res, verbs in grants
    ]


def rbac(kind: str, name: str, namespace: str | None = None, **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, **fields}


def role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def refused_get(sandbox: Sandbox, namespace: str, workdir: Path) -> Path:
    """A kubeconfig of a ServiceAccount that may do what a controller confined to `namespace` does,
    with ConfigMaps listed, watched, created and patched but never read by name."""
    grants = rules(
        ("delivery.luojilab.com", "rollouts", "get list watch patch"),
        ("delivery.luojilab.com", "rollouts/status", "patch"),
        ("component.luojilab.com", "components", "list watch"),
        ("apps", "replicasets", "list watch create patch delete"),
        ("apps", "deployments statefulsets daemonsets", "list watch"),
        ("networking.k8s.io", "ingresses", "list watch"),
        ("", "services", "get list watch"),
        ("", "events", "create"),
        ("", "configmaps", "list watch create patch"),  # no get
        ("batch", "jobs", "list watch"),  # the Jobs of job metrics, watched by every Rollout controller
        ("autoscaling", "horizontalpodautoscalers", "list watch"),  # what a Component may render
    )
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "tracker", "namespace": namespace},
    }
    subjects = [{"kind": "ServiceAccount", "name": "tracker", "namespace": namespace}]
    cluster_name = f"tracker-{namespace}"
    role = rbac("Role", "tracker", namespace, rules=grants)
    binding = rbac(
        "RoleBinding", "tracker", namespace, roleRef=role_ref("Role", "tracker"), subjects=subjects
    )
    profiles = rbac(
        "ClusterRole", cluster_name, rules=rules(("component.luojilab.com", "clusterprofiles", "list watch"))
    )
    cluster_binding = rbac(
        "ClusterRoleBinding", cluster_name, roleRef=role_ref("ClusterRole", cluster_name), subjects=subjects
    )
    apply(sandbox, account, role, binding, profiles, cluster_binding)
    token = sandbox.kubectl_run("create", "token", "tracker", "-n", namespace, "--duration=1h").strip()
    return kubeconfig_for_token(sandbox, token, workdir / "tracker.kubeconfig")


def test_a_tracked_configmap_that_cannot_be_read_is_unknown_and_starts_nothing(
    sandbox: Sandbox, namespace: str, crds: None, tmp_path: Path
) -> None:
    """Flagger's #989 the other way round: the controller may not read the ConfigMap a running
    revision uses once it is gone from its watch, and that read's failure holds the Rollout."""
    kubeconfig = refused_get(sandbox, namespace, tmp_path)
    templates = f"--templates={namespace}/component-templates"  # read where this account may
    limited = Controller.of_shard(
        sandbox,
        tmp_path / "delivery.log",
        SHARD,
        "--track-configmaps",
        templates,
        namespace=namespace,
        kubeconfig=kubeconfig,
    )
    limited.start()
    try:
        apply(sandbox, configuration("ConfigMap", "app", namespace, "hello"))
        apply(sandbox, using("ConfigMap", "app", namespace, "web:1", STEPS))
        first = wait_for(sandbox, "web", namespace, timeout=90, phase="Healthy")["stableRevision"]
        sandbox.kubectl_run("label", "configmap", "app", "-n", namespace, f"{TRACK_LABEL}-")  # off the watch
        eventually(
            lambda: configured(sandbox, namespace) == ("False", "ConfigMapUnreadable") or None,
            timeout=30,
            what="ConfigurationReady=False, unreadable",
        )
        held = condition(sandbox, namespace)
        assert held is not None
        assert "403" in held["message"]
        apply(sandbox, using("ConfigMap", "app", namespace, "web:2", STEPS))
        eventually(
            lambda: get(sandbox, "rollout", "web", namespace)["status"]["observedGeneration"] == 2 or None,
            timeout=30,
            what="the new spec seen",
        )
        assert replicas_by_revision(sandbox, "web", namespace) == {first: 5}  # nothing started
    finally:
        limited.stop()
        sandbox.kubectl_run(
            "delete", "clusterrolebinding,clusterrole", f"tracker-{namespace}", "--ignore-not-found"
        )
