"""`kubectl delivery plan`: what a change of templates or ClusterProfile would change, before it is made.

Each Component is rendered with the proposed inputs and every rendered object is sent to the
apiserver as the controller would send it (server-side apply, the controller's field manager),
but with `dryRun=All`: the answer is the object as it would be, defaults, admission and the
removal of fields the controller no longer renders included, and nothing is stored. The plan
is the unified diff between the live object and that answer, so it shows only what would really
change, as `kubectl diff` does. Objects the Component rendered before and would no longer
render are shown as removed.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from delivery import templating_budget
from delivery.api.profile import ClusterProfileSpec
from delivery.component.drift import stamped
from delivery.component.inputs import profile_spec, read_inputs
from delivery.component.render import RENDERABLE, Cluster, render
from delivery.component.templating import SUFFIX, RenderError, TemplateSet
from delivery.kube.api import APPLY, FIELD_MANAGER, Kind, Kube, KubeError, Object

EXIT_NONE, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
"""As `kubectl diff`: nothing would change, something would, the plan failed."""
NOISE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")
"""Metadata that changes on every write without changing what runs."""


def comparable(obj: Object | None) -> Object | None:
    """The object without its status and write-bookkeeping, for a diff of what runs."""
    if obj is None:
        return None
    metadata = {key: value for key, value in obj.get("metadata", {}).items() if key not in NOISE}
    return {**{key: value for key, value in obj.items() if key != "status"}, "metadata": metadata}


def unified(live: Object | None, planned: Object | None, label: str) -> str:
    """The unified diff from `live` to `planned` (None: absent), empty when they are equal."""
    before, after = (_yaml(comparable(obj)) for obj in (live, planned))
    lines = difflib.unified_diff(
        before,
        after,
        fromfile=f"live/{label}" if live else "/dev/null",
        tofile=f"planned/{label}" if planned else "/dev/null",
    )
    return "".join(lines)


def _yaml(obj: Object | None) -> list[str]:
    if obj is None:
        return []
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)


@dataclass(frozen=True)
class Change:
    label: str
    """`<Kind> <namespace>/<name>`."""
    diff: str


async def plan(kube: Kube, component: Object, cluster: Cluster, templates: TemplateSet) -> list[Change]:
    """What rendering `component` with `cluster` and `templates` would change; raises RenderError."""
    rendered = await templating_budget.off_loop(render, component, cluster, templates)
    namespace = component["metadata"]["namespace"]
    changes = []
    names = set()
    for obj in rendered.objects:
        kind = RENDERABLE[obj["apiVersion"], obj["kind"]]
        name = obj["metadata"]["name"]
        names.add((obj["kind"], name))
        live = await kube.get(kind, namespace, name)
        planned = await _dry_run_apply(kube, kind, stamped(obj))
        changes.append(Change(f"{obj['kind']} {namespace}/{name}", unified(live, planned, _label(obj))))
    for gone in _previously_rendered(component):
        if (gone["kind"], gone["name"]) in names:
            continue
        where = RENDERABLE.get((gone["apiVersion"], gone["kind"]))
        if where is None:
            continue
        live = await kube.get(where, namespace, gone["name"])
        if live is not None:
            changes.append(
                Change(f"{gone['kind']} {namespace}/{gone['name']}", unified(live, None, _label(live)))
            )
    return [change for change in changes if change.diff]


def _label(obj: Object) -> str:
    return f"{obj['kind']}/{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def _previously_rendered(component: Object) -> Iterable[dict[str, Any]]:
    return (component.get("status") or {}).get("objects") or []


async def _dry_run_apply(kube: Kube, kind: Kind, obj: Object) -> Object:
    metadata = obj["metadata"]
    query = {"fieldManager": FIELD_MANAGER, "force": "true", "dryRun": "All"}  # as the controller
    path = kind.path(metadata["namespace"], metadata["name"])
    return await kube.request("PATCH", path, body=obj, content_type=APPLY, query=query)


def proposed_templates(directory: Path) -> TemplateSet:
    """The shipped templates with the files of `directory` (a proposed templates ConfigMap) in place."""
    files = {path.name: path.read_text() for path in directory.iterdir() if path.name.endswith(SUFFIX)}
    return TemplateSet.shipped().replace(files, str(directory))


def proposed_profile(path: Path) -> ClusterProfileSpec:
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or document.get("kind") != "ClusterProfile":
        raise RenderError(f"{path}: not a ClusterProfile")
    return profile_spec({**document, "metadata": {"name": str(path), **(document.get("metadata") or {})}})


async def show_plan(
    kube: Kube,
    components: list[Object],
    *,
    profile: Path | None = None,
    templates: Path | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Print what rendering `components` with the proposed inputs would change (the cluster's
    own where none is proposed). Exit code: 0 nothing, 1 something would change, 2 an error."""
    current = await read_inputs(kube)
    try:
        cluster = Cluster(
            proposed_profile(profile) if profile else current.cluster.profile,
            current.cluster.served_ingress_versions,
        )
        template_set = proposed_templates(templates) if templates else current.templates
    except (RenderError, OSError, yaml.YAMLError) as error:
        print(f"plan: {error}", file=out)
        return EXIT_ERROR
    changed = failed = 0
    for component in components:
        metadata = component["metadata"]
        try:
            changes = await plan(kube, component, cluster, template_set)
        except (RenderError, KubeError) as error:  # one Component's trouble does not hide the others'
            failed += 1
            what = "cannot render" if isinstance(error, RenderError) else "cannot plan"
            print(f"# Component {metadata['namespace']}/{metadata['name']}: {what}: {error}", file=out)
            continue
        changed += bool(changes)
        for change in changes:
            print(change.diff, end="", file=out)
    print(f"# {changed} of {len(components)} Components would change, {failed} cannot be planned", file=out)
    if failed:
        return EXIT_ERROR
    return EXIT_CHANGES if changed else EXIT_NONE
