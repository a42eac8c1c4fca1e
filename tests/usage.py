"""Simulated CPU and memory usage of pods, for tests of what acts on resource metrics: an HPA,
`kubectl top`, the `metrics.k8s.io` API.

The sandbox's kwok takes each pod's usage from two annotations of the pod (its own
`ClusterResourceUsage` "usage-from-annotation", see `sandbox.build.kwok_metrics_configs`):
`kwok.x-k8s.io/usage-cpu` (cores, a quantity such as `400m`; 1m without it) and
`kwok.x-k8s.io/usage-memory` (bytes, such as `64Mi`; 1Mi without it), the same for each of the
pod's containers. metrics-server scrapes kwok every 10 s and takes CPU as the rate of its
cumulative counter between two scrapes, so a change shows in `metrics.k8s.io` 10 to 20 s after it is
made, and in an HPA's decision one sync later (5 s in the sandbox). An HPA's utilisation is usage
over request: a pod requesting 100m and annotated `200m` is at 200%.

Two ways to set it:

- `set_usage(api, namespace, "app=web", cpu="200m")`: the pods matching the selector now;
- `with held_usage(api, namespace, "app=web", cpu="200m") as usage:` the same, and every pod that
  matches while the block runs (those an HPA or a release adds: without it they report 1m, which
  pulls the average down); `usage.set(cpu="10m")` changes it for all of them. Pods keep their
  annotations after the block.

`pod_usage(api, namespace, selector)` reads back what `metrics.k8s.io` serves.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from kubernetes import client, watch
from kubernetes.utils import parse_quantity

CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
MEMORY_ANNOTATION = "kwok.x-k8s.io/usage-memory"
# How long one watch of the held pods lasts before it is listed again: also the longest the end
# of a `held_usage` block waits for its thread.
RELIST_SECONDS = 2


def _annotations(cpu: str | None, memory: str | None) -> dict[str, str]:
    """The annotations for the usage given; a quantity kwok cannot read is refused here, not
    reported by kwok as 0 in its log."""
    wanted = {CPU_ANNOTATION: cpu, MEMORY_ANNOTATION: memory}
    annotations = {key: value for key, value in wanted.items() if value is not None}
    if not annotations:
        raise ValueError("give cpu, memory or both")
    for value in annotations.values():
        parse_quantity(value)
    return annotations


def _differs(pod: client.V1Pod, annotations: dict[str, str]) -> bool:
    current = pod.metadata.annotations or {}
    return any(current.get(key) != value for key, value in annotations.items())


def _name(pod: client.V1Pod) -> str:
    return str(pod.metadata.name)


def _annotate(core: client.CoreV1Api, pod: client.V1Pod, annotations: dict[str, str]) -> None:
    with contextlib.suppress(client.ApiException):  # a pod deleted meanwhile needs nothing
        core.patch_namespaced_pod(
            _name(pod), str(pod.metadata.namespace), {"metadata": {"annotations": annotations}}
        )


def set_usage(
    api: client.ApiClient, namespace: str, selector: str, *, cpu: str | None = None, memory: str | None = None
) -> list[str]:
    """Give every pod in `namespace` matching the label `selector` this usage (per container);
    return their names. Pods created afterwards report the defaults: see `held_usage`."""
    annotations = _annotations(cpu, memory)
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    for pod in pods:
        if _differs(pod, annotations):
            _annotate(core, pod, annotations)
    return sorted(_name(pod) for pod in pods)


class HeldUsage:
    """The usage that every pod matching a selector is given while a `held_usage` block runs: a
    thread lists and watches the pods and annotates each that differs (level-based, so a pod
    created, or annotated otherwise, meanwhile is set right within a watch event)."""

    def __init__(
        self, api: client.ApiClient, namespace: str, selector: str, annotations: dict[str, str]
    ) -> None:
        # A client of its own: the thread's requests never wait for, or share a connection with, the test's.
        self._api = client.ApiClient(api.configuration)
        self._core = client.CoreV1Api(self._api)
        self._namespace = namespace
        self._selector = selector
        self._annotations = annotations
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, name=f"usage {namespace}/{selector}", daemon=True)

    def set(self, *, cpu: str | None = None, memory: str | None = None) -> list[str]:
        """Change the held usage (what is not given stays as it was) for the pods there now and
        those to come; return the names of those there now."""
        with self._lock:
            self._annotations = {**self._annotations, **_annotations(cpu, memory)}
        return set_usage(self._api, self._namespace, self._selector, cpu=cpu, memory=memory)

    def _wanted(self) -> dict[str, str]:
        with self._lock:
            return dict(self._annotations)

    def _hold(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self._core.list_namespaced_pod(self._namespace, label_selector=self._selector)
                for pod in pods.items:
                    self._fix(pod)
                stream = watch.Watch().stream(
                    self._core.list_namespaced_pod,
                    self._namespace,
                    label_selector=self._selector,
                    resource_version=pods.metadata.resource_version,
                    timeout_seconds=RELIST_SECONDS,
                )
                for event in stream:
                    if self._stop.is_set():
                        break
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._fix(event["object"])
            except Exception:  # a failed list or watch (a 410, the apiserver restarting): list again
                self._stop.wait(0.5)

    def _fix(self, pod: client.V1Pod) -> None:
        wanted = self._wanted()
        if _differs(pod, wanted):
            _annotate(self._core, pod, wanted)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._api.close()


@contextlib.contextmanager
def held_usage(
    api: client.ApiClient, namespace: str, selector: str, *, cpu: str | None = None, memory: str | None = None
) -> Iterator[HeldUsage]:
    """Give every pod matching `selector` this usage, the ones there now (annotated before the
    block starts) and the ones created while it runs."""
    held = HeldUsage(api, namespace, selector, _annotations(cpu, memory))
    held.set(cpu=cpu, memory=memory)
    held.start()
    try:
        yield held
    finally:
        held.stop()


@dataclass(frozen=True)
class PodUsage:
    """One pod's usage as `metrics.k8s.io` serves it, summed over its containers."""

    cpu: Decimal  # cores
    memory: Decimal  # bytes


def pod_usage(api: client.ApiClient, namespace: str, selector: str) -> dict[str, PodUsage]:
    """What metrics-server reports for the pods matching `selector`, by pod name; a pod it has no
    rate for yet (fewer than two scrapes) is missing."""
    listed = cast(
        dict[str, Any],
        client.CustomObjectsApi(api).list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods", label_selector=selector
        ),
    )
    return {
        item["metadata"]["name"]: PodUsage(
            cpu=sum((parse_quantity(c["usage"]["cpu"]) for c in item["containers"]), Decimal(0)),
            memory=sum((parse_quantity(c["usage"]["memory"]) for c in item["containers"]), Decimal(0)),
        )
        for item in listed["items"]
    }
