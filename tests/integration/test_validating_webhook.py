"""The validating webhook through the real apiserver: the chart's ValidatingWebhookConfiguration,
pointed by the controller at its webhook on loopback, makes `kubectl apply --dry-run=server`
refuse an analysis template that cannot work, with every field and column in kubectl's output;
and with the webhook stopped, or hanging, writes go through (failurePolicy Ignore) within the
configuration's timeout.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery import tls
from sandbox.cluster import Sandbox, free_port
from tests.controller import Controller
from tests.integration.test_helm import one, render
from tests.secret_volume import mount
from tests.waiting import eventually

CONFIGURATION = "delivery-analysis"  # the chart's, for a release named delivery


def template(name: str, condition: str, query: str, namespace: str | None = None) -> dict[str, Any]:
    """An AnalysisTemplate in `namespace`, or a ClusterAnalysisTemplate without one."""
    metric = {"name": "errors", "successCondition": condition, "provider": {"prometheus": {"query": query}}}
    return {
        "apiVersion": "delivery.luojilab.com/v1alpha1",
        "kind": "AnalysisTemplate" if namespace else "ClusterAnalysisTemplate",
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
        "spec": {"args": [{"name": "service"}], "metrics": [metric]},
    }


def kubectl(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(sandbox.kubectl), f"--kubeconfig={sandbox.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def written(path: Path, *objects: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(objects))
    return path


def dry_run(sandbox: Sandbox, path: Path) -> subprocess.CompletedProcess[str]:
    return kubectl(sandbox, "apply", "--dry-run=server", "-f", str(path))


def refusal(sandbox: Sandbox, path: Path) -> str | None:
    """What kubectl says when the server refuses `path`'s objects; None if it takes them."""
    result = dry_run(sandbox, path)
    return result.stderr if result.returncode != 0 else None


@pytest.fixture
def configuration(sandbox: Sandbox, crds: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The chart's ValidatingWebhookConfiguration, created as Helm would, deleted after. It names
    the release's Service, which the controller replaces by its URL (the sandbox's apiserver
    reaches loopback, not Services)."""
    rendered = one(render(), "ValidatingWebhookConfiguration")
    assert rendered["metadata"]["name"] == CONFIGURATION
    sandbox.kubectl_run("create", "-f", str(written(tmp_path / "configuration.yaml", rendered)))
    yield rendered
    kubectl(sandbox, "delete", "validatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found")


@pytest.mark.matrix
def test_bad_templates_are_refused_at_apply_and_a_stopped_webhook_blocks_nothing(
    sandbox: Sandbox,
    namespace: str,
    configuration: dict[str, Any],
    conversion_restored: None,
    tmp_path: Path,
) -> None:
    hook = configuration["webhooks"][0]
    assert (hook["failurePolicy"], hook["sideEffects"], hook["matchPolicy"]) == (
        "Ignore",
        "None",
        "Equivalent",
    )
    timeout = hook["timeoutSeconds"]
    volume, certificate = tmp_path / "webhook-tls", tls.self_signed(tls.LOCAL_HOSTS)
    mount(volume, certificate)
    port = free_port()
    controller = Controller(
        sandbox,
        tmp_path / "delivery.log",
        # A shard of its own: this controller reconciles nothing of the other tests'.
        args=(
            "--controller-id=validation",
            f"--webhook-port={port}",
            f"--webhook-cert-dir={volume}",
            f"--validating-webhook={CONFIGURATION}",
        ),
    )
    cluster_name = f"bad-{namespace}"
    bad = written(
        tmp_path / "bad.yaml",
        template("bad", "result[0] < )", "rate(errors{service='{{ args.service }'}[1m])", namespace),
        template(cluster_name, "median(result) < 1", "up"),
    )
    good = written(
        tmp_path / "good.yaml",
        template("good", "result[0] < 0.01", "rate(errors{service='{{ args.service }}'}[1m])", namespace),
    )
    undeclared = written(
        tmp_path / "undeclared.yaml", template("undeclared", "true", "up{job='{{args.job}}'}", namespace)
    )
    controller.start()
    try:
        eventually(lambda: "validating webhook at" in controller.tail() or None, timeout=60, what="webhook")
        pointed = json.loads(
            sandbox.kubectl_run("get", "validatingwebhookconfiguration", CONFIGURATION, "-o", "json")
        )
        assert pointed["webhooks"][0]["clientConfig"] == {
            "url": f"https://127.0.0.1:{port}/validate",
            "caBundle": base64.b64encode(certificate.ca).decode(),
        }
        # The apiserver takes up a changed configuration within a moment.
        refused = eventually(lambda: refusal(sandbox, bad), timeout=30, what="the bad templates refused")
        output = refused
        assert "spec.metrics[0].successCondition: column 13: expected an expression, found ')'" in output
        assert "spec.metrics[0].provider.prometheus.query: line 1: unexpected '}'" in output
        assert "spec.metrics[0].successCondition: column 1: unknown name 'median'" in output

        accepted = dry_run(sandbox, good)
        assert accepted.returncode == 0, accepted.stderr
        assert "created (server dry run)" in accepted.stdout
        warned = dry_run(sandbox, undeclared)
        assert warned.returncode == 0, warned.stderr
        assert (
            "Warning: spec.metrics[0].provider.prometheus.query: argument job is not declared"
            in warned.stderr
        )
    finally:
        controller.stop()

    # Stopped: nothing listens, the apiserver's call fails at once and is ignored.
    started = time.monotonic()
    assert dry_run(sandbox, good).returncode == 0
    assert dry_run(sandbox, bad).returncode == 0  # unchecked: the status will say it, as before
    configmap = kubectl(sandbox, "create", "configmap", "unrelated", "-n", namespace, "--from-literal=a=b")
    assert configmap.returncode == 0, configmap.stderr
    assert time.monotonic() - started < timeout

    # Hanging: a listener that never answers; the apiserver gives up after timeoutSeconds.
    with socket.create_server(("127.0.0.1", port)):
        started = time.monotonic()
        hung = dry_run(sandbox, good)
        waited = time.monotonic() - started
    assert hung.returncode == 0, hung.stderr
    assert waited < timeout + 3
