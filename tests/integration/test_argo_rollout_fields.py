"""Argo Rollouts' Rollouts, written as its documentation writes them with only `apiVersion` changed,
released through the controller with the behaviour Argo documents."""

from __future__ import annotations

import datetime
import json
import subprocess
import time
from typing import Any

import pytest
import yaml

from delivery.rollout.metadata import EPHEMERAL_ANNOTATION
from delivery.rollout.revision import HASH_LABEL
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.integration.test_rollout_targets import deployment
from tests.integration.test_rollout_traffic import ingress
from tests.rollouts import ABORT, PROMOTE, apply, events, get, replicas_by_revision, service, status, wait_for
from tests.waiting import eventually

API_VERSION = "delivery.luojilab.com/v1alpha1"  # instead of argoproj.io/v1alpha1

# docs/features/canary.md's shape: a basic canary (no trafficRouting), with an integer pause and
# docs/features/anti-affinity/anti-affinity.md's antiAffinity.
BASIC_CANARY = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: basic
spec:
  replicas: 4
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app: basic
  template:
    metadata:
      labels:
        app: basic
    spec:
      containers:
      - name: basic
        image: argoproj/rollouts-demo:blue
  strategy:
    canary:
      antiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          weight: 80
      steps:
      - setWeight: 50
      - pause: {duration: 2}  # seconds, as Argo's IntOrString
"""


def manifest(text: str, namespace: str, image: str | None = None) -> dict[str, Any]:
    """An Argo manifest with only its apiVersion changed (and the image, for a new revision)."""
    body: dict[str, Any] = yaml.safe_load(text)
    body["apiVersion"] = API_VERSION
    body["metadata"]["namespace"] = namespace
    if image is not None:
        body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return body


def kubectl_wait(sandbox: Sandbox, name: str, namespace: str, condition: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(sandbox.kubectl),
            f"--kubeconfig={sandbox.kubeconfig}",
            "wait",
            f"--for=condition={condition}",
            f"rollout/{name}",
            "-n",
            namespace,
            "--timeout=120s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_basic_canary_completes_within_5s_of_its_last_step(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    """Argo applies scaleDownDelaySeconds only with traffic routing: a basic canary's `kubectl wait
    --for=condition=Completed` returns as soon as the old pods are gone, not 30 s later."""
    apply(sandbox, manifest(BASIC_CANARY, namespace))
    first = wait_for(sandbox, "basic", namespace, phase="Healthy", timeout=120)["stableRevision"]
    apply(sandbox, manifest(BASIC_CANARY, namespace, image="argoproj/rollouts-demo:yellow"))
    waiting = kubectl_wait(sandbox, "basic", namespace, "Completed")
    wait_for(sandbox, "basic", namespace, phase="Paused", currentStepIndex=1, timeout=60)

    def last_step_done() -> bool:
        return (status(sandbox, "basic", namespace).get("currentStepIndex") or 0) >= 2

    eventually(last_step_done, timeout=30, interval=0.05, what="the pause, the last step, ends")
    last_step = time.monotonic()
    assert waiting.wait(timeout=60) == 0, waiting.communicate()[0]
    elapsed = time.monotonic() - last_step
    print(f"Completed {elapsed:.2f} s after the last step")  # the figure, with -rA
    assert elapsed < 5
    done = status(sandbox, "basic", namespace)
    assert done["stableRevision"] == done["canaryRevision"]
    assert done["replicas"] == done["readyReplicas"] == 4  # the old pods are gone

    def anti_affinity(revision: str) -> Any:
        replicaset = get(sandbox, "rs", f"basic-{revision}", namespace)
        return replicaset["spec"]["template"]["spec"].get("affinity")

    assert anti_affinity(first) is None  # the first revision had no stable to keep away from
    # Promoted, it is the stable: nothing left to keep away from (the term, there while the canary
    # ran, is checked by test_ephemeral_metadata_moves_with_the_role_without_restarting_a_pod).
    assert anti_affinity(done["stableRevision"]) is None


# A canary with no steps (docs/features/specification.md: steps are optional).
NO_STEPS = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: no-steps
spec:
  replicas: 3
  selector:
    matchLabels:
      app: no-steps
  template:
    metadata:
      labels:
        app: no-steps
    spec:
      containers:
      - name: no-steps
        image: argoproj/rollouts-demo:blue
  strategy:
    canary: {}
"""


@pytest.mark.parametrize("canary", [{}, {"steps": []}], ids=["no steps", "steps []"])
def test_a_canary_without_steps_goes_straight_to_the_new_revision(
    sandbox: Sandbox, namespace: str, controller: Controller, canary: dict[str, Any]
) -> None:
    def written(image: str | None = None) -> dict[str, Any]:
        body = manifest(NO_STEPS, namespace, image)
        body["spec"]["strategy"]["canary"] = canary
        return body

    apply(sandbox, written())
    first = wait_for(sandbox, "no-steps", namespace, phase="Healthy", timeout=120)
    apply(sandbox, written("argoproj/rollouts-demo:yellow"))
    waiting = kubectl_wait(sandbox, "no-steps", namespace, "Completed")
    assert waiting.wait(timeout=90) == 0, waiting.communicate()[0]
    done = status(sandbox, "no-steps", namespace)
    assert done["stableRevision"] == done["canaryRevision"] != first["stableRevision"]
    assert done["replicas"] == done["readyReplicas"] == 3


# docs/features/canary.md's example budgets: one pod above spec.replicas, none unavailable.
PACED = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: paced
spec:
  replicas: 4
  selector:
    matchLabels:
      app: paced
  template:
    metadata:
      labels:
        app: paced
    spec:
      containers:
      - name: paced
        image: argoproj/rollouts-demo:blue
  strategy:
    canary:
      maxSurge: "25%"
      maxUnavailable: 0
      steps:
      - setWeight: 50
      - pause: {duration: 1}
"""


def test_a_basic_canary_moves_pods_within_max_surge_and_max_unavailable(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, manifest(PACED, namespace))
    wait_for(sandbox, "paced", namespace, phase="Healthy", timeout=120)
    apply(sandbox, manifest(PACED, namespace, image="argoproj/rollouts-demo:yellow"))
    waiting = kubectl_wait(sandbox, "paced", namespace, "Completed")
    totals = []
    while waiting.poll() is None:
        totals.append(sum(replicas_by_revision(sandbox, "paced", namespace).values()))
        assert status(sandbox, "paced", namespace).get("readyReplicas", 0) >= 4  # maxUnavailable 0
    assert waiting.returncode == 0, waiting.communicate()[0]
    assert min(totals) >= 4  # maxUnavailable 0: the stable gives up pods only as canary ones are ready
    assert max(totals) <= 5  # maxSurge 25% of 4: one pod above spec.replicas, never more
    assert status(sandbox, "paced", namespace)["readyReplicas"] == 4


# docs/features/specification.md's spec-level fields: a new pod counts as available only once
# ready for minReadySeconds; with progressDeadlineAbort a stuck release aborts.
SPEC_FIELDS = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: spec-fields
spec:
  replicas: 2
  minReadySeconds: 4
  progressDeadlineSeconds: 8
  progressDeadlineAbort: true
  selector:
    matchLabels:
      app: spec-fields
  template:
    metadata:
      labels:
        app: spec-fields
    spec:
      containers:
      - name: spec-fields
        image: argoproj/rollouts-demo:blue
  strategy:
    canary:
      steps:
      - setWeight: 50
"""


def test_min_ready_seconds_and_progress_deadline_abort(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, manifest(SPEC_FIELDS, namespace))
    healthy = wait_for(sandbox, "spec-fields", namespace, phase="Healthy", timeout=120)
    seen_healthy = datetime.datetime.now(datetime.UTC)
    # The first pods count only 4 s after they became Ready. The apiserver keeps whole seconds, so the
    # clock to hold the Healthy against is the pods' own Ready time as stored, not the moment of the
    # apply (a pod Ready at 31.9 s is stored as 31 s and is available at 35 s, 3.1 s after it was).
    pods = json.loads(sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", "app=spec-fields", "-ojson"))
    ready_at = max(
        datetime.datetime.fromisoformat(condition["lastTransitionTime"])
        for pod in pods["items"]
        for condition in pod["status"]["conditions"]
        if condition["type"] == "Ready" and condition["status"] == "True"
    )
    assert (seen_healthy - ready_at).total_seconds() >= 4
    replicaset = f"spec-fields-{healthy['stableRevision']}"
    spec = json.loads(sandbox.kubectl_run("get", "rs", replicaset, "-n", namespace, "-o", "json"))["spec"]
    assert spec["minReadySeconds"] == 4

    stuck = manifest(SPEC_FIELDS, namespace, image="argoproj/rollouts-demo:yellow")
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "nowhere"}  # never ready
    apply(sandbox, stuck)
    aborted = wait_for(sandbox, "spec-fields", namespace, phase="Aborted", timeout=60)
    assert aborted["stableRevision"] == healthy["stableRevision"]
    assert ("RolloutAborted", "no progress for 8s: progressDeadlineAbort") in events(
        sandbox, "spec-fields", namespace
    )


# docs/features/traffic-management/nginx.md's shape, with minPodsPerReplicaSet, dynamicStableScale
# and scaleDownDelayRevisionLimit from docs/features/specification.md.
NGINX_CANARY = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 4
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: argoproj/rollouts-demo:blue
  strategy:
    canary:
      canaryService: web-canary
      stableService: web
      minPodsPerReplicaSet: 2
      dynamicStableScale: true
      scaleDownDelayRevisionLimit: 0
      abortScaleDownDelaySeconds: 4
      trafficRouting:
        nginx:
          stableIngress: web
      steps:
      - setWeight: 10
      - pause: {}
      - setWeight: 50
      - pause: {}
"""


def test_a_routed_canary_keeps_min_pods_scales_the_stable_dynamically_and_skips_the_delay(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(
        sandbox, service("web", namespace, "web"), service("web-canary", namespace, "web"), ingress(namespace)
    )
    apply(sandbox, manifest(NGINX_CANARY, namespace))
    first = wait_for(sandbox, "web", namespace, phase="Healthy", timeout=120)["stableRevision"]
    apply(sandbox, manifest(NGINX_CANARY, namespace, image="argoproj/rollouts-demo:yellow"))
    paused = wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1, timeout=90)
    # 10% of 4 is one pod; minPodsPerReplicaSet makes it two
    canary = paused["canaryRevision"]
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 4, canary: 2}  # stable: 90% of 4, up
    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=true")
    wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=3, timeout=60)
    # dynamicStableScale: the stable shrinks to the half of the traffic it still takes
    eventually(
        lambda: replicas_by_revision(sandbox, "web", namespace) == {first: 2, canary: 2},
        timeout=30,
        what="the stable at 50%",
    )
    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{PROMOTE}=true")
    promoted = time.monotonic()
    waiting = kubectl_wait(sandbox, "web", namespace, "Completed")
    assert waiting.wait(timeout=60) == 0, waiting.communicate()[0]
    assert time.monotonic() - promoted < 20  # not the 30 s delay: no old revision may wait for it
    assert replicas_by_revision(sandbox, "web", namespace) == {first: 0, canary: 4}

    # An abort: traffic back to the stable at once, the canary's pods kept abortScaleDownDelaySeconds.
    apply(sandbox, manifest(NGINX_CANARY, namespace, image="argoproj/rollouts-demo:red"))
    third = wait_for(sandbox, "web", namespace, phase="Paused", currentStepIndex=1, timeout=90)[
        "canaryRevision"
    ]
    sandbox.kubectl_run("annotate", "rollout", "web", "-n", namespace, f"{ABORT}=true")
    aborted = time.monotonic()
    eventually(
        lambda: (status(sandbox, "web", namespace).get("weights") or {}).get("canary") == 0,
        timeout=30,
        what="the canary's weight back to 0",
    )
    assert replicas_by_revision(sandbox, "web", namespace)[third] == 2  # still there
    eventually(
        lambda: replicas_by_revision(sandbox, "web", namespace)[third] == 0,
        timeout=30,
        what="the aborted canary scaled down",
    )
    assert time.monotonic() - aborted >= 3  # after the 4 s delay, not at once


# docs/migrating.md's shape: a Rollout that takes a Deployment's pod template over by workloadRef.
REFERENCING = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: legacy
spec:
  replicas: 3
  selector:
    matchLabels:
      app: legacy
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: legacy
    scaleDown: never
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 10s}
"""


@pytest.mark.parametrize(("scale_down", "left"), [("never", 3), ("onsuccess", 0), ("progressively", 0)])
def test_workload_ref_scale_down(
    sandbox: Sandbox, namespace: str, controller: Controller, scale_down: str, left: int
) -> None:
    apply(sandbox, deployment(namespace))
    eventually(
        lambda: get(sandbox, "deployment", "legacy", namespace).get("status", {}).get("readyReplicas") == 3,
        timeout=60,
        what="the Deployment ready",
    )
    referencing = manifest(REFERENCING, namespace)
    referencing["spec"]["workloadRef"]["scaleDown"] = scale_down
    apply(sandbox, referencing)
    wait_for(sandbox, "legacy", namespace, phase="Healthy", timeout=90)
    eventually(
        lambda: get(sandbox, "deployment", "legacy", namespace)["spec"]["replicas"] == left,
        timeout=30,
        what=f"the Deployment at {left}",
    )
    time.sleep(2)  # `never` is not merely late
    assert get(sandbox, "deployment", "legacy", namespace)["spec"]["replicas"] == left


# docs/features/bluegreen.md's example, with previewReplicaCount and scaleDownDelayRevisionLimit.
BLUE_GREEN = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: rollout-bluegreen
spec:
  replicas: 3
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app: rollout-bluegreen
  template:
    metadata:
      labels:
        app: rollout-bluegreen
    spec:
      containers:
      - name: rollouts-demo
        image: argoproj/rollouts-demo:blue
        imagePullPolicy: Always
        ports:
        - containerPort: 8080
  strategy:
    blueGreen:
      activeService: rollout-bluegreen-active
      previewService: rollout-bluegreen-preview
      autoPromotionEnabled: false
      previewReplicaCount: 1
      scaleDownDelayRevisionLimit: 0
"""


def paused_in_preview(sandbox: Sandbox, namespace: str, app: str, text: str) -> tuple[str, str]:
    """The blue-green `text` released once (its Services made first), then a new image paused in
    preview: the stable revision and the preview's."""
    apply(sandbox, service(f"{app}-active", namespace, app), service(f"{app}-preview", namespace, app))
    apply(sandbox, manifest(text, namespace))
    first = wait_for(sandbox, app, namespace, phase="Healthy", timeout=120)["stableRevision"]
    apply(sandbox, manifest(text, namespace, image="argoproj/rollouts-demo:green"))
    new = wait_for(sandbox, app, namespace, phase="Paused", timeout=60)["canaryRevision"]
    return first, new


def test_a_blue_green_preview_runs_preview_replica_count_until_promoted(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    app = "rollout-bluegreen"
    first, new = paused_in_preview(sandbox, namespace, app, BLUE_GREEN)
    eventually(
        lambda: replicas_by_revision(sandbox, app, namespace) == {first: 3, new: 1},
        timeout=30,
        what="the preview at previewReplicaCount",
    )
    sandbox.kubectl_run("annotate", "rollout", app, "-n", namespace, f"{PROMOTE}=true")
    promoted = time.monotonic()
    waiting = kubectl_wait(sandbox, app, namespace, "Completed")
    assert waiting.wait(timeout=60) == 0, waiting.communicate()[0]
    assert time.monotonic() - promoted < 20  # scaleDownDelayRevisionLimit 0: no 30 s delay
    assert replicas_by_revision(sandbox, app, namespace) == {first: 0, new: 3}
    assert get(sandbox, "service", f"{app}-active", namespace)["spec"]["selector"][HASH_LABEL] == new


def pods_of(sandbox: Sandbox, app: str, namespace: str) -> dict[str, dict[str, Any]]:
    """The app's running pods (not being deleted), by uid: their revision, labels and annotations."""
    listing = json.loads(
        sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json")
    )
    return {
        pod["metadata"]["uid"]: {
            "revision": pod["metadata"]["labels"][HASH_LABEL],
            "role": pod["metadata"]["labels"].get("role"),
            "note": (pod["metadata"].get("annotations") or {}).get("role"),
        }
        for pod in listing["items"]
        if not pod["metadata"].get("deletionTimestamp")
    }


def roles_by_revision(sandbox: Sandbox, app: str, namespace: str) -> dict[str, set[tuple[Any, Any]]]:
    """Each revision's pods' (role label, role annotation)."""
    found: dict[str, set[tuple[Any, Any]]] = {}
    for pod in pods_of(sandbox, app, namespace).values():
        found.setdefault(pod["revision"], set()).add((pod["role"], pod["note"]))
    return found


# docs/features/ephemeral-metadata.md, with the annotations of docs/features/specification.md and
# anti-affinity/anti-affinity.md's preferred rule; restartAt as specification.md writes it.
EPHEMERAL_CANARY = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: labelled
spec:
  replicas: 2
  selector:
    matchLabels:
      app: labelled
  template:
    metadata:
      labels:
        app: labelled
    spec:
      containers:
      - name: labelled
        image: argoproj/rollouts-demo:blue
  strategy:
    canary:
      canaryMetadata:
        annotations:
          role: canary
        labels:
          role: canary
      stableMetadata:
        annotations:
          role: stable
        labels:
          role: stable
      antiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          weight: 1
      steps:
      - setWeight: 50
      - pause: {}
"""


def test_ephemeral_metadata_moves_with_the_role_without_restarting_a_pod(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    """Argo: the new ReplicaSet's pods are made with the canary metadata; once promoted, they are
    "updated in place to use the stable metadata (without recreating the pods)". The injected
    anti-affinity leaves the promoted ReplicaSet's template (its pods keep theirs: a pod's affinity
    cannot change), and a restart's new pods carry the stable metadata."""
    app = "labelled"
    apply(sandbox, manifest(EPHEMERAL_CANARY, namespace))
    first = wait_for(sandbox, app, namespace, phase="Healthy", timeout=120)["stableRevision"]
    eventually(
        lambda: roles_by_revision(sandbox, app, namespace) == {first: {("stable", "stable")}},
        timeout=30,
        what="the first revision's pods labelled stable from the start",
    )
    apply(sandbox, manifest(EPHEMERAL_CANARY, namespace, image="argoproj/rollouts-demo:yellow"))
    new = wait_for(sandbox, app, namespace, phase="Paused", currentStepIndex=1, timeout=60)["canaryRevision"]
    eventually(
        lambda: (
            roles_by_revision(sandbox, app, namespace)
            == {first: {("stable", "stable")}, new: {("canary", "canary")}}
        ),
        timeout=30,
        what="canary and stable pods each with their role",
    )
    canary_pods = {uid for uid, pod in pods_of(sandbox, app, namespace).items() if pod["revision"] == new}
    template = get(sandbox, "rs", f"{app}-{new}", namespace)["spec"]["template"]
    (term,) = template["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["labelSelector"]["matchExpressions"][0]["values"] == [first]

    sandbox.kubectl_run("annotate", "rollout", app, "-n", namespace, f"{PROMOTE}=true")
    wait_for(sandbox, app, namespace, phase="Healthy", stableRevision=new, timeout=60)
    eventually(
        lambda: roles_by_revision(sandbox, app, namespace) == {new: {("stable", "stable")}},
        timeout=30,
        what="the promoted pods relabelled stable, the old ones gone",
    )
    assert canary_pods <= set(pods_of(sandbox, app, namespace))  # the same pods: none restarted
    promoted = get(sandbox, "rs", f"{app}-{new}", namespace)["spec"]["template"]
    assert (promoted["metadata"]["labels"]["role"], promoted["metadata"]["annotations"]["role"]) == (
        "stable",
        "stable",
    )
    assert "affinity" not in promoted["spec"]  # Argo's affinity of a stable ReplicaSet: its template's own

    # A move left half-done, as by a kill after the template's write and before the pods': the
    # ReplicaSet's record still says canary, one pod still carries the canary metadata. Resumed.
    canary_record = json.dumps({"annotations": {"role": "canary"}, "labels": {"role": "canary"}})
    pod = json.loads(
        sandbox.kubectl_run("get", "pods", "-n", namespace, "-l", f"{HASH_LABEL}={new}", "-o", "json")
    )["items"][0]["metadata"]["name"]
    sandbox.kubectl_run("label", "pod", pod, "-n", namespace, "role=canary", "--overwrite")
    sandbox.kubectl_run("annotate", "pod", pod, "-n", namespace, "role=canary", "--overwrite")
    # last: pods are not watched, the ReplicaSet's change is what brings the reconcile
    sandbox.kubectl_run(
        "annotate",
        "rs",
        f"{app}-{new}",
        "-n",
        namespace,
        f"{EPHEMERAL_ANNOTATION}={canary_record}",
        "--overwrite",
    )
    eventually(
        lambda: (
            roles_by_revision(sandbox, app, namespace) == {new: {("stable", "stable")}}
            and json.loads(
                get(sandbox, "rs", f"{app}-{new}", namespace)["metadata"]["annotations"][EPHEMERAL_ANNOTATION]
            )["labels"]
            == {"role": "stable"}
        ),
        timeout=30,
        what="the half-done move finished: the pod relabelled, the record stable",
    )

    restart = json.dumps({"spec": {"restartAt": datetime.datetime.now(datetime.UTC).isoformat()}})
    sandbox.kubectl_run("patch", "rollout", app, "-n", namespace, "--type=merge", "-p", restart)
    eventually(
        lambda: status(sandbox, app, namespace).get("restartedAt") is not None,
        timeout=60,
        what="every pod replaced after restartAt",
    )
    restarted = pods_of(sandbox, app, namespace)
    assert not canary_pods & set(restarted)
    assert {(pod["role"], pod["note"]) for pod in restarted.values()} == {("stable", "stable")}


# docs/features/ephemeral-metadata.md's blue-green fields in docs/features/bluegreen.md's example,
# with specification.md's abortScaleDownDelaySeconds and a short scaleDownDelaySeconds.
EPHEMERAL_BLUE_GREEN = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: bg-labelled
spec:
  replicas: 2
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app: bg-labelled
  template:
    metadata:
      labels:
        app: bg-labelled
    spec:
      containers:
      - name: rollouts-demo
        image: argoproj/rollouts-demo:blue
        imagePullPolicy: Always
        ports:
        - containerPort: 8080
  strategy:
    blueGreen:
      activeService: bg-labelled-active
      previewService: bg-labelled-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: 3
      abortScaleDownDelaySeconds: 6
      activeMetadata:
        labels:
          role: active
      previewMetadata:
        labels:
          role: preview
"""


def test_active_and_preview_metadata_and_an_abort_that_keeps_the_preview_a_while(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    app = "bg-labelled"
    first, new = paused_in_preview(sandbox, namespace, app, EPHEMERAL_BLUE_GREEN)
    eventually(
        lambda: (
            roles_by_revision(sandbox, app, namespace)
            == {first: {("active", None)}, new: {("preview", None)}}
        ),
        timeout=30,
        what="active and preview pods each with their role",
    )
    preview_pods = set(pods_of(sandbox, app, namespace))
    sandbox.kubectl_run("annotate", "rollout", app, "-n", namespace, f"{PROMOTE}=true")
    wait_for(sandbox, app, namespace, phase="Healthy", stableRevision=new, timeout=60)
    eventually(
        lambda: roles_by_revision(sandbox, app, namespace) == {new: {("active", None)}},
        timeout=30,
        what="the old revision scaled down after scaleDownDelaySeconds",
    )
    assert set(pods_of(sandbox, app, namespace)) <= preview_pods  # the preview's pods, none restarted

    apply(sandbox, manifest(EPHEMERAL_BLUE_GREEN, namespace, image="argoproj/rollouts-demo:red"))
    third = wait_for(sandbox, app, namespace, phase="Paused", timeout=60)["canaryRevision"]
    eventually(
        lambda: replicas_by_revision(sandbox, app, namespace).get(third) == 2,
        timeout=30,
        what="the third revision's preview",
    )
    sandbox.kubectl_run("annotate", "rollout", app, "-n", namespace, f"{ABORT}=true")
    aborted = time.monotonic()
    wait_for(sandbox, app, namespace, phase="Aborted", timeout=30)
    assert replicas_by_revision(sandbox, app, namespace)[third] == 2  # kept for abortScaleDownDelaySeconds
    eventually(
        lambda: replicas_by_revision(sandbox, app, namespace)[third] == 0,
        timeout=30,
        what="the aborted preview scaled down",
    )
    assert time.monotonic() - aborted >= 5  # not at once: abortScaleDownDelaySeconds 6
