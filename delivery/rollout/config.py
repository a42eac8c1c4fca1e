"""Configuration released like an image: the ConfigMaps and Secrets a pod template uses, when their
owner labels them `delivery.luojilab.com/track: "true"`, are part of the Rollout's revision.

Pure: which objects a pod template refers to, what a revision is made of, and the template that
refers to the revision's own copies instead. The controller (`delivery.rollout.tracking`) reads
and writes; everything it decides with comes from here.

- **A revision is its template and its configuration.** The revision hash covers the pod template
  and the digest of each tracked object's data, so a change of a tracked ConfigMap's data starts a
  release with its steps and analysis, exactly as a new image does, and restoring both the
  template and the data finds the earlier ReplicaSet again. With nothing tracked the hash is the
  template's alone, as before tracking existed: no Rollout restarts when the feature comes.
- **Each revision has its own copies.** `<name>-<revision>`, `immutable: true`, labelled with
  their source and revision, owned by the revision's ReplicaSet (the garbage collector removes
  them with it). The ReplicaSet's template refers to the copies, so stable pods keep reading the
  old data during a canary and an abort brings back the old data with the old pods. One copy per
  revision, never shared: a copy has exactly one owner, and one going never takes another
  revision's configuration with it.
- **A failed read is "unknown", never a change** (Flagger's #989 took a failed read for new data
  and started a canary). A tracked object that cannot be read, or that is gone while the current
  revision uses it, is a `Problem`: nothing is released and the Rollout's `ConfigurationReady`
  condition says why.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from delivery.kube.api import Object
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL, template_hash

TRACK_LABEL = "delivery.luojilab.com/track"  # "true": released with the Rollouts that use it
COPY_LABEL = "delivery.luojilab.com/copy-of"  # on a copy: the name of the object it copies
CONFIG_MAP, SECRET = "ConfigMap", "Secret"
NAME_LIMIT = 253  # a ConfigMap's or Secret's name is a DNS subdomain
# The token controller fills such a Secret with a ServiceAccount's token: a copy would mint one.
REFUSED_SECRET_TYPES = frozenset({"kubernetes.io/service-account-token"})

Ref = tuple[str, str]  # (ConfigMap or Secret, name)
Rename = Callable[[str, str], str]  # (kind, name) -> the name to refer to instead


def _rename_in(holder: Any, key: str, kind: str, rename: Rename) -> None:
    if isinstance(holder, dict) and isinstance(holder.get(key), str):
        holder[key] = rename(kind, holder[key])


def _walk(spec: dict[str, Any], rename: Rename) -> None:
    """Every place a pod spec names a ConfigMap or Secret, renamed in place: env `valueFrom`,
    `envFrom`, volumes and projected volume sources, in containers and init containers."""
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for variable in container.get("env") or []:
            source = variable.get("valueFrom") or {}
            _rename_in(source.get("configMapKeyRef"), "name", CONFIG_MAP, rename)
            _rename_in(source.get("secretKeyRef"), "name", SECRET, rename)
        for source in container.get("envFrom") or []:
            _rename_in(source.get("configMapRef"), "name", CONFIG_MAP, rename)
            _rename_in(source.get("secretRef"), "name", SECRET, rename)
    for volume in spec.get("volumes") or []:
        _rename_in(volume.get("configMap"), "name", CONFIG_MAP, rename)
        _rename_in(volume.get("secret"), "secretName", SECRET, rename)
        for source in (volume.get("projected") or {}).get("sources") or []:
            _rename_in(source.get("configMap"), "name", CONFIG_MAP, rename)
            _rename_in(source.get("secret"), "name", SECRET, rename)


def rewrite(template: dict[str, Any], rename: Rename) -> dict[str, Any]:
    """A copy of the pod template with every ConfigMap and Secret reference renamed."""
    rewritten = copy.deepcopy(template)
    _walk(rewritten.get("spec") or {}, rename)
    return rewritten


def references(template: dict[str, Any]) -> tuple[Ref, ...]:
    """The ConfigMaps and Secrets a pod template uses, sorted, each once."""
    found: set[Ref] = set()

    def collect(kind: str, name: str) -> str:
        found.add((kind, name))
        return name

    rewrite(template, collect)
    return tuple(sorted(found))


def digest(source: Object) -> str:
    """What of a ConfigMap or Secret its pods see: data and binaryData, and a Secret's type."""
    content = {key: source.get(key) for key in ("data", "binaryData", "type") if source.get(key) is not None}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def copy_name(name: str, revision: str) -> str:
    return f"{name[: NAME_LIMIT - len(revision) - 1]}-{revision}"


def copies_in(template: dict[str, Any], revision: str) -> dict[Ref, str]:
    """Of a ReplicaSet's template, the copies it uses (source -> copy): what a revision was released
    with, read back from the ReplicaSet alone (the plugin shows it; the controller compares)."""
    suffix = f"-{revision}"
    return {
        (kind, name[: -len(suffix)]): name for kind, name in references(template) if name.endswith(suffix)
    }


@dataclass(frozen=True)
class Problem:
    """Why the configuration cannot be released now: the `ConfigurationReady=False` condition."""

    reason: str
    message: str


@dataclass(frozen=True)
class Release:
    """A revision with its configuration: the hash, the template that refers to the copies, and
    the copies to make (copy name -> its body without an owner)."""

    revision: str
    template: dict[str, Any]
    copies: dict[Ref, Object]

    @property
    def tracked(self) -> tuple[Ref, ...]:
        return tuple(sorted(self.copies))


def describe(refs: Iterable[Ref]) -> str:
    return ", ".join(f"{kind}/{name}" for kind, name in refs)


def refused(source: Object) -> Problem | None:
    """A tracked object that is never copied: a Secret the token controller would fill."""
    kind, name = source["kind"], source["metadata"]["name"]
    if kind == SECRET and source.get("type") in REFUSED_SECRET_TYPES:
        return Problem(
            "SecretRefused", f"Secret {name} is of type {source['type']}: a copy would be given a token"
        )
    return None


def release(
    template: dict[str, Any], sources: Mapping[Ref, Object], rollout: str, bare: str | None = None
) -> Release:
    """The revision of `template` with the tracked `sources` it refers to (the others untouched);
    `bare`: the template's own hash, when the caller keeps it (a Plan does)."""
    used = {ref: sources[ref] for ref in references(template) if ref in sources} if sources else {}
    if not used:
        return Release(bare or template_hash(template), template, {})
    configuration = {f"{kind}/{name}": digest(source) for (kind, name), source in used.items()}
    revision = template_hash(template, configuration)
    copies = {ref: _copy(source, revision, rollout) for ref, source in used.items()}
    renamed = rewrite(
        template, lambda kind, name: copy_name(name, revision) if (kind, name) in used else name
    )
    return Release(revision, renamed, copies)


def _copy(source: Object, revision: str, rollout: str) -> Object:
    metadata = source["metadata"]
    body: Object = {
        "apiVersion": "v1",
        "kind": source["kind"],
        "metadata": {
            "name": copy_name(metadata["name"], revision),
            "namespace": metadata["namespace"],
            "labels": {COPY_LABEL: metadata["name"], ROLLOUT_LABEL: rollout, HASH_LABEL: revision},
        },
        "immutable": True,
    }
    for key in ("data", "binaryData", "type"):
        if source.get(key) is not None:
            body[key] = source[key]
    return body


def same_copy(existing: Object, wanted: Object) -> bool:
    """An object found under a copy's name is that copy (made by an earlier reconcile killed
    before it saw it), not someone else's object squatting the name."""
    labels = existing["metadata"].get("labels") or {}
    return labels.get(COPY_LABEL) == wanted["metadata"]["labels"][COPY_LABEL] and digest(existing) == digest(
        wanted
    )


def owned_by(copy_body: Object, owner: Mapping[str, Any]) -> bool:
    """Whether the copy is owned by `owner` (an owner reference) and nothing else."""
    references_ = copy_body["metadata"].get("ownerReferences") or []
    return [reference.get("uid") for reference in references_] == [owner["uid"]]


def condition_message(tracked: Iterable[Ref], revision: str) -> str:
    return f"released with revision {revision}: {describe(tracked)}"
