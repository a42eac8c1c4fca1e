"""The conversion webhook's certificate is renewed under load, without a restart, and the
apiserver's conversions keep answering throughout.

The controller serves from a directory laid out and updated as the kubelet mounts a Secret
(`tests.secret_volume`); the renewal brings a new CA too, the hardest case: the CRD's caBundle
must trust it before any handshake presents a certificate it signed.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
import time
from pathlib import Path

from cryptography import x509

from delivery import tls
from delivery.api.conversion import convert
from delivery.operator import CONTROLLER_ID_LABEL
from sandbox.cluster import Sandbox, free_port
from tests.components import component
from tests.controller import Controller
from tests.rollouts import apply
from tests.secret_volume import mount
from tests.waiting import eventually

CONVERTED_CRD = "components.component.luojilab.com"
V1ALPHA1 = "components.v1alpha1.component.luojilab.com"


class Load(threading.Thread):
    """`kubectl get` of the namespace's Components as v1alpha1 in a loop: every read is a
    conversion by the webhook. Failures are kept with when they happened."""

    def __init__(self, sandbox: Sandbox, namespace: str) -> None:
        super().__init__(daemon=True)
        self.argv = [
            str(sandbox.kubectl), f"--kubeconfig={sandbox.kubeconfig}", "get", V1ALPHA1,
            "-n", namespace, "-o", "json", "--request-timeout=10s",
        ]  # fmt: skip
        self.stopping = threading.Event()
        self.answered = 0
        self.failures: list[tuple[float, str]] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            result = subprocess.run(self.argv, capture_output=True, text=True, check=False)
            if result.returncode == 0 and len(json.loads(result.stdout)["items"]) == 3:
                self.answered += 1
            else:
                self.failures.append((time.monotonic(), result.stderr.strip() or result.stdout[:200]))

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def served(port: int) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.0.0.1", port)).encode())


def ca_bundle(sandbox: Sandbox) -> bytes:
    config = sandbox.kubectl_run(
        "get", "crd", CONVERTED_CRD, "-o", "jsonpath={.spec.conversion.webhook.clientConfig.caBundle}"
    )
    return base64.b64decode(config)


def test_a_renewed_certificate_with_a_new_ca_is_served_while_conversions_keep_answering(
    sandbox: Sandbox, namespace: str, conversion_restored: None, tmp_path: Path
) -> None:
    volume = tmp_path / "webhook-tls"
    first, second = tls.self_signed(tls.LOCAL_HOSTS), tls.self_signed(tls.LOCAL_HOSTS)
    mount(volume, first)
    port = free_port()
    controller = Controller(
        sandbox,
        tmp_path / "delivery.log",
        # A shard of its own: this controller reconciles nothing of the other tests'.
        args=("--controller-id=rotation", f"--webhook-port={port}", f"--webhook-cert-dir={volume}"),
    )
    controller.start()
    load = Load(sandbox, namespace)
    try:
        eventually(lambda: "conversion webhook at" in controller.tail() or None, timeout=60, what="webhook")
        assert ca_bundle(sandbox) == first.ca
        for name in ("a", "b", "c"):  # stored as v1beta1; no controller's shard: nothing reconciles them
            stored = convert(component(name, namespace), "component.luojilab.com/v1beta1")
            stored["metadata"]["labels"] = {CONTROLLER_ID_LABEL: "nobody"}
            apply(sandbox, stored)
        load.start()
        eventually(lambda: load.answered >= 3, timeout=30, what="conversions answered")

        mount(volume, second)
        renewed = time.monotonic()
        eventually(lambda: served(port) == x509.load_pem_x509_certificate(second.certificate), timeout=30)
        switched = time.monotonic()
        answered = load.answered
        eventually(lambda: load.answered >= answered + 5, timeout=30, what="conversions after the switch")
        assert load.failures == [], controller.tail()
        assert ca_bundle(sandbox) == second.ca + first.ca
        # The apiserver keeps its connection open across the switch (TLS checks a certificate at
        # the handshake only). Trusting the new CA alone changes its client, whose new handshake
        # must meet the new certificate.
        trust_new_only = {"op": "replace", "path": "/spec/conversion/webhook/clientConfig/caBundle"}
        trust_new_only["value"] = base64.b64encode(second.ca).decode()
        sandbox.kubectl_run("patch", "crd", CONVERTED_CRD, "--type=json", "-p", json.dumps([trust_new_only]))
        answered = load.answered
        eventually(lambda: load.answered >= answered + 5, timeout=30, what="conversions under the new CA")
    finally:
        load.stop()
        controller.stop()
    assert load.failures == [], controller.tail()
    assert "webhook certificate reloaded" in controller.log.read_text()
    assert switched - renewed < 10  # within a few reload intervals
