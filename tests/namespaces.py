"""Namespaces for tests: each test (or each run of a test) in its own, so that nothing it leaves
behind can be taken for another's."""

from __future__ import annotations

import uuid

from kubernetes import client

from tests.waiting import eventually


def create(api: client.ApiClient, prefix: str = "t") -> str:
    """A fresh namespace, once its default service account exists (pods are refused until then)."""
    core = client.CoreV1Api(api)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    eventually(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        what="default service account created",
    )
    return name


def delete(api: client.ApiClient, name: str) -> None:
    client.CoreV1Api(api).delete_namespace(name)
