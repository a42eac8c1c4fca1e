"""`kubectl delivery convert`'s output applies: Argo Rollouts' and Flagger's documented manifests
(tests/manifests/), converted by the plugin as a user runs it, are accepted by a real apiserver with
our CRDs (their schemas and CEL rules), every object of ours the conversion wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox.cluster import Sandbox

MANIFESTS = Path(__file__).parents[1] / "manifests"


@pytest.mark.parametrize("manifest", ["argo.yaml", "flagger.yaml"])
def test_converted_manifests_apply(sandbox: Sandbox, crds: None, namespace: str, manifest: str) -> None:
    converted = subprocess.run(
        [sys.executable, "-m", "delivery.cli.plugin", "convert", "-f", str(MANIFESTS / manifest)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert converted.returncode == 1, converted.stderr  # both leave something out, and say so
    assert "left out: " in converted.stderr
    ours = [
        document
        for document in yaml.safe_load_all(converted.stdout)
        if document["apiVersion"].startswith("delivery.luojilab.com/")
    ]
    assert len(ours) >= 5
    applied = subprocess.run(
        [
            str(sandbox.kubectl),
            f"--kubeconfig={sandbox.kubeconfig}",
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            "-o",
            "json",
        ],
        input=converted.stdout,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr
    created = {(item["kind"], item["metadata"]["name"]) for item in json.loads(applied.stdout)["items"]}
    assert {(document["kind"], document["metadata"]["name"]) for document in ours} <= created
