"""Which cluster, context and namespace the plugin acts on, read the way kubectl reads them.

kubectl's rules (client-go's loading rules), which the kubernetes client does not follow for the
current context when `$KUBECONFIG` names several files (it lets the last file win):
- the files: `--kubeconfig FILE` alone, else every file in `$KUBECONFIG` (split by `os.pathsep`,
  missing ones skipped), else `~/.kube/config`;
- the context: `--context NAME`, else the first `current-context` set in those files;
- a context (cluster, user) named in several files: the first file's wins;
- the namespace: `-n/--namespace`, else the context's `namespace`, else `default`.
Without any file, in a pod, the service account's namespace is read as kubectl reads it.

Pure apart from reading the files, so the rules are unit-tested; the client is then built for the
context chosen here, by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes.aio import config as aio_config
from kubernetes.aio.client import ApiClient
from kubernetes.aio.config.config_exception import ConfigException

DEFAULT_NAMESPACE = "default"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubeconfigError(RuntimeError):
    """The kubeconfig cannot give what was asked for (a context it does not have)."""


@dataclass(frozen=True)
class Target:
    """Where the plugin acts: the kubeconfig files (none: in-cluster), the context, the namespace."""

    files: tuple[Path, ...]
    context: str | None
    namespace: str

    @property
    def config_file(self) -> str | None:
        """The files as the kubernetes client takes them: one path string, `os.pathsep`-joined."""
        return os.pathsep.join(str(path) for path in self.files) if self.files else None


def config_files(kubeconfig: str | None, environ: Mapping[str, str], home: Path) -> tuple[Path, ...]:
    """The kubeconfig files in kubectl's order of precedence (only those that exist)."""
    if kubeconfig:
        return (Path(kubeconfig).expanduser(),)  # missing: an error, as in kubectl
    listed = environ.get("KUBECONFIG", "")
    if listed:
        paths = (Path(path).expanduser() for path in listed.split(os.pathsep) if path)
        return tuple(path for path in paths if path.exists())
    default = home / ".kube" / "config"
    return (default,) if default.exists() else ()


def resolve(
    documents: Sequence[Mapping[str, Any]], *, context: str | None, namespace: str | None
) -> tuple[str | None, str]:
    """The context and namespace the documents (kubeconfig files, in precedence order) give, with
    the flags given first. A `--context` none of them has is an error, as in kubectl."""
    chosen = context or next((str(d["current-context"]) for d in documents if d.get("current-context")), None)
    entry: Mapping[str, Any] | None = None
    if chosen is not None:
        entry = next(
            (
                item.get("context") or {}
                for document in documents
                for item in document.get("contexts") or []
                if item.get("name") == chosen
            ),
            None,
        )
        if entry is None and context is not None:
            raise KubeconfigError(f"context {context!r} is not in the kubeconfig")
    return chosen, namespace or str((entry or {}).get("namespace") or DEFAULT_NAMESPACE)


def target(kubeconfig: str | None, context: str | None, namespace: str | None) -> Target:
    """Where to act, from the flags, the environment and the files."""
    files = config_files(kubeconfig, os.environ, Path.home())
    if not files:
        if context:
            raise KubeconfigError(f"context {context!r}: no kubeconfig ($KUBECONFIG, ~/.kube/config)")
        in_pod = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() if SERVICE_ACCOUNT_NAMESPACE.exists() else ""
        return Target((), None, namespace or in_pod or DEFAULT_NAMESPACE)
    documents = [load(path) for path in files]
    chosen, resolved = resolve(documents, context=context, namespace=namespace)
    return Target(files, chosen, resolved)


def load(path: Path) -> Mapping[str, Any]:
    """One kubeconfig file (an empty one: no keys)."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise KubeconfigError(f"{path}: {error}") from error
    return document if isinstance(document, dict) else {}


async def client_for(where: Target) -> ApiClient:
    """A client for the chosen context (named, so that the client's own choice of the current
    context does not apply), or the pod's service account when there is no kubeconfig."""
    if where.files:
        client: ApiClient = await aio_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=where.config_file, context=where.context
        )
        return client
    try:
        aio_config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped in kubernetes.aio
    except ConfigException as error:
        raise KubeconfigError(
            f"no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config), nor in a pod: {error}"
        ) from error
    return ApiClient()
