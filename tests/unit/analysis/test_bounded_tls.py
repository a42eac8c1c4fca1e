"""Every measurement over TLS shares one context (building one per request cost 20 ms and 0.8 MiB
that the allocator kept), and sharing it verifies as before: against a real HTTPS server on
loopback, a certificate of an unknown CA is refused at each request, and trusted once the CA is
(httpx's `SSL_CERT_FILE`, read when the context is built)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from delivery.analysis import bounded, prometheus
from delivery.analysis.provider import Unmeasurable
from tests.analysis_egress import POLICY
from tests.unit.analysis.conftest import Loopback

ANSWER = {"status": "success", "data": {"resultType": "vector", "result": [{"value": [0, "1"]}]}}


@pytest.fixture
def fresh_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shared context built again for this test's environment, and again after it."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    bounded.tls.cache_clear()
    yield
    bounded.tls.cache_clear()


@pytest.mark.usefixtures("fresh_context")
async def test_one_context_verifies_every_request(tls_loopback: tuple[Loopback, Path]) -> None:
    server, _ca = tls_loopback
    server.answers["/api/v1/query"] = (200, json.dumps(ANSWER).encode())
    for _ in range(2):  # the second request through the same context is refused as well
        with pytest.raises(Unmeasurable, match="CERTIFICATE_VERIFY_FAILED"):
            await prometheus.query(server.url, "up", egress=POLICY)
    context = bounded.tls()
    assert context is bounded.tls()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert server.seen == []  # no request got past the handshake


@pytest.mark.usefixtures("fresh_context")
async def test_the_context_trusts_the_ca_the_environment_names(
    tls_loopback: tuple[Loopback, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls_loopback
    server.answers["/api/v1/query"] = (200, json.dumps(ANSWER).encode())
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    for _ in range(2):
        assert await prometheus.query(server.url, "up", egress=POLICY) == [1.0]
    assert [seen.query["query"] for seen in server.seen] == [["up"], ["up"]]
