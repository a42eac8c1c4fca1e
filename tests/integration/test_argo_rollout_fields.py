"""Argo Rollouts' Rollouts, written as its documentation writes them with only `apiVersion` changed,
released through the controller with the behaviour Argo documents."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
import yaml

from delivery.rollout.revision import HASH_LABEL
from sandbox.cluster import Sandbox
from tests.controller import Controller
from tests.integration.test_rollout_targets import deployment
from tests.integration.test_rollout_traffic import ingress
from tests.rollouts import PROMOTE, apply, events, get, replicas_by_revision, service, status, wait_for
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
    (preferred,) = anti_affinity(done["stableRevision"])["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["weight"] == 80
    assert preferred["podAffinityTerm"]["labelSelector"]["matchExpressions"][0]["values"] == [first]


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


def test_a_canary_without_steps_goes_straight_to_the_new_revision(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    apply(sandbox, manifest(NO_STEPS, namespace))
    first = wait_for(sandbox, "no-steps", namespace, phase="Healthy", timeout=120)
    apply(sandbox, manifest(NO_STEPS, namespace, image="argoproj/rollouts-demo:yellow"))
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
    started = time.monotonic()
    apply(sandbox, manifest(SPEC_FIELDS, namespace))
    healthy = wait_for(sandbox, "spec-fields", namespace, phase="Healthy", timeout=120)
    assert time.monotonic() - started >= 4  # the first pods counted only after 4 s ready
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


@pytest.mark.parametrize(("scale_down", "left"), [("never", 3), ("progressively", 0)])
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


def test_a_blue_green_preview_runs_preview_replica_count_until_promoted(
    sandbox: Sandbox, namespace: str, controller: Controller
) -> None:
    app = "rollout-bluegreen"
    apply(sandbox, service(f"{app}-active", namespace, app), service(f"{app}-preview", namespace, app))
    apply(sandbox, manifest(BLUE_GREEN, namespace))
    first = wait_for(sandbox, app, namespace, phase="Healthy", timeout=120)["stableRevision"]
    apply(sandbox, manifest(BLUE_GREEN, namespace, image="argoproj/rollouts-demo:green"))
    new = wait_for(sandbox, app, namespace, phase="Paused", timeout=60)["canaryRevision"]
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
