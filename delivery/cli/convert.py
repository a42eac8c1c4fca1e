"""`kubectl delivery convert -f FILE [-f FILE ...] [-o yaml|json]`: Argo Rollouts' and Flagger's
manifests rewritten as ours, on stdout; what could not be mapped, and why, on stderr.

Nothing here talks to the cluster: a conversion is read, mapped (`convert_argo`, `convert_flagger`,
pure) and printed, so it can run in a pipeline or on a laptop before anything is applied. Every
document is written, in order: the ones of other kinds (a Deployment, a Service) as they are, so
that a whole application's file converts into a whole application's file. Exit 0: everything
mapped; 1: something was left out (each on stderr: the object, the field path and why); 2: an
input could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from delivery.api.definition import DELIVERY_GROUP
from delivery.cli import convert_argo, convert_flagger
from delivery.cli.convert_fit import Omission, describe
from delivery.rollout.revision import HASH_LABEL, template_hash

EXIT_CONVERTED, EXIT_LEFT_OUT, EXIT_UNREADABLE = 0, 1, 2


@dataclass
class Conversion:
    objects: list[dict[str, Any]] = field(default_factory=list)
    omissions: list[Omission] = field(default_factory=list)


def _group(document: Mapping[str, Any]) -> str:
    return str(document.get("apiVersion", "")).partition("/")[0]


def convert(documents: Sequence[Mapping[str, Any]]) -> Conversion:
    """All of `documents` as ours (pure): the same order, what did not map omitted and said."""
    done = Conversion()
    flagger = convert_flagger.Inputs.of(documents)
    for document in documents:
        group, kind = _group(document), str(document.get("kind"))
        if group == convert_argo.GROUP and kind in convert_argo.KINDS:
            fitted, omissions = convert_argo.convert(document)
            done.objects += [fitted] if fitted is not None else []
            done.omissions += omissions
        elif group == convert_argo.GROUP and kind in convert_argo.NOT_CONVERTED:
            done.omissions.append(Omission(describe(document), "", convert_argo.NOT_CONVERTED[kind]))
        elif group == convert_flagger.GROUP and kind == "Canary":
            written, omissions = convert_flagger.convert(document, flagger)
            done.objects += written
            done.omissions += omissions
        elif group == convert_flagger.GROUP and kind == "MetricTemplate":
            continue  # written into the AnalysisTemplate of each Canary that uses it (below if none)
        elif group == convert_flagger.GROUP:
            why = convert_flagger.NOT_CONVERTED.get(kind, "not converted: no such kind here")
            done.omissions.append(Omission(describe(document), "", why))
        else:
            done.objects.append(dict(document))
    for key, template in flagger.metric_templates.items():
        if key not in flagger.referenced:
            done.omissions.append(
                Omission(
                    describe(template),
                    "",
                    "not converted: no Canary among the inputs uses it, and it has no threshold of its "
                    "own (Flagger keeps it in the Canary); give it with the Canaries that use it",
                )
            )
    return done


def _read(names: Iterable[Path], stdin: TextIO) -> list[Mapping[str, Any]]:
    documents: list[Mapping[str, Any]] = []
    for name in names:
        text = stdin.read() if str(name) == "-" else name.read_text(encoding="utf-8")
        for document in yaml.safe_load_all(text):
            if isinstance(document, dict):
                documents.extend(
                    document.get("items") or [] if document.get("kind") == "List" else [document]
                )
            elif document is not None:
                raise ValueError(f"{name}: a document that is not an object")
    return documents


class _Dumper(yaml.SafeDumper):
    """Each value written out where it is: no `&id001` anchors for repeated ones (a pause step)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dumped(objects: Sequence[Mapping[str, Any]], output: str) -> str:
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=2) + "\n"
    return yaml.dump_all(list(objects), Dumper=_Dumper, sort_keys=False, explicit_start=True)


def add_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The `convert` command, made by the plugin's `command` factory."""
    converting = command(
        "convert",
        "Argo Rollouts' and Flagger's manifests as ours, on stdout (never applied); exit 1 if anything "
        "was left out (stderr says what and why), 2 if a file could not be read",
    )
    converting.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="append",
        required=True,
        type=Path,
        metavar="FILE",
        help="'-': stdin",
    )
    converting.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    converting.add_argument(
        "--revisions",
        action="store_true",
        help="print each converted Rollout's revision instead (the pod-template hash its pods carry "
        "here): the label to put on a running Argo Rollout's pods so that they are taken over",
    )


def revisions(objects: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(name, revision) of each Rollout of `objects` with its pod template inline: the hash its
    ReplicaSet and pods will carry (`HASH_LABEL`), as the controller computes it from the template
    alone (a template that uses tracked ConfigMaps or Secrets also hashes their data: not known here)."""
    return [
        (str(body["metadata"]["name"]), template_hash(body["spec"]["template"]))
        for body in objects
        if body.get("kind") == "Rollout"
        and str(body.get("apiVersion")).startswith(f"{DELIVERY_GROUP}/")
        and isinstance((body.get("spec") or {}).get("template"), dict)
    ]


def run(
    names: Sequence[Path], output: str, stdin: TextIO = sys.stdin, *, only_revisions: bool = False
) -> int:
    """The command: convert `names` (`-`: stdin), print; the exit code says if anything was left out."""
    try:
        documents = _read(names, stdin)
    except (OSError, yaml.YAMLError, ValueError) as error:
        print(f"kubectl delivery convert: {error}", file=sys.stderr)
        return EXIT_UNREADABLE
    done = convert(documents)
    if only_revisions:
        for name, revision in revisions(done.objects):
            print(f"{name} {HASH_LABEL}={revision}")
    else:
        sys.stdout.write(_dumped(done.objects, output))
    for omission in done.omissions:
        print(f"left out: {omission}", file=sys.stderr)
    return EXIT_LEFT_OUT if done.omissions else EXIT_CONVERTED
