"""The egress policy: which addresses analysis may reach, the rule a refusal names, DNS answers
checked before the connection (which goes to the checked address), redirects re-checked, Secrets
read only with their label, and what of an answer reaches a message kept short and printable."""

from __future__ import annotations

import base64
import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from delivery.analysis import bounded, prometheus, web
from delivery.analysis.egress import Address, Egress, Refused, parse_rule
from delivery.analysis.provider import Unmeasurable
from delivery.analysis.run import SECRET_CONSENT_LABEL, Analyst, Subject
from delivery.api.analysis import Web
from delivery.kube.api import Kind, Kube, Object
from delivery.kube.kinds import SECRET
from tests.analysis_egress import POLICY
from tests.unit.analysis.conftest import Loopback


def refusal(policy: Egress, address: str, port: int = 80, host: str | None = None) -> str | None:
    rule = policy.refusal(host or address, ipaddress.ip_address(address), port)
    return rule.name if rule else None


@pytest.mark.parametrize(
    ("address", "port", "rule"),
    [
        ("169.254.169.254", 80, "link-local (169.254.0.0/16)"),
        ("fe80::1", 80, "link-local (fe80::/10)"),
        ("127.0.0.1", 80, "loopback (127.0.0.0/8)"),
        ("127.8.9.10", 9090, "loopback (127.0.0.0/8)"),
        ("::1", 80, "loopback (::1)"),
        ("0.0.0.0", 80, "unspecified (0.0.0.0/8)"),  # noqa: S104 - Linux routes it to loopback
        ("::ffff:169.254.169.254", 80, "link-local (169.254.0.0/16)"),  # IPv4-mapped
        ("10.0.0.5", 10250, "kubelet (port 10250)"),
        ("10.0.0.5", 9090, None),
        ("93.184.216.34", 443, None),
    ],
)
def test_the_default_refuses_link_local_loopback_and_the_kubelet(
    address: str, port: int, rule: str | None
) -> None:
    assert refusal(Egress(), address, port) == rule


def test_an_allow_rule_lifts_a_refusal_only_where_it_is_as_narrow() -> None:
    policy = Egress.from_flags(["127.0.0.1", "10.0.0.5:10250", "0.0.0.0/0"], [])
    assert refusal(policy, "127.0.0.1", 8080) is None
    assert refusal(policy, "127.0.0.2") == "loopback (127.0.0.0/8)"
    assert refusal(policy, "169.254.169.254") == "link-local (169.254.0.0/16)"  # 0.0.0.0/0 lifts nothing
    assert refusal(policy, "10.0.0.5", 10250) is None
    assert refusal(policy, "10.0.0.6", 10250) == "kubelet (port 10250)"


def test_with_allow_rules_only_what_they_match_is_reached_and_deny_rules_always_refuse() -> None:
    policy = Egress.from_flags(
        ["10.0.0.0/8", "prometheus.monitoring.svc:9090", "*.example.com"], ["10.9.0.0/16"]
    )
    assert refusal(policy, "10.1.2.3") is None
    assert refusal(policy, "10.9.1.1") == "--analysis-deny 10.9.0.0/16"
    assert refusal(policy, "8.8.8.8") == (
        "--analysis-allow (only 10.0.0.0/8, prometheus.monitoring.svc:9090, *.example.com)"
    )
    assert refusal(policy, "8.8.8.8", 9090, host="prometheus.monitoring.svc") is None
    assert refusal(policy, "8.8.8.8", 80, host="prometheus.monitoring.svc") is not None
    assert refusal(policy, "8.8.8.8", host="api.example.com") is None
    # A name rule does not lift a built-in refusal: the name's addresses are still checked.
    assert refusal(policy, "169.254.169.254", host="meta.example.com") == "link-local (169.254.0.0/16)"


async def test_the_apiserver_is_refused_at_its_port_even_where_loopback_is_allowed() -> None:
    policy = await POLICY.with_apiserver("https://127.0.0.1:6443")
    assert refusal(policy, "127.0.0.1", 6443) == "apiserver (127.0.0.1:6443)"
    assert refusal(policy, "127.0.0.1", 8080) is None
    lifted = await Egress.from_flags(["127.0.0.1:6443"], []).with_apiserver("https://127.0.0.1:6443")
    assert refusal(lifted, "127.0.0.1", 6443) is None  # named with its port: on purpose


@pytest.mark.parametrize(
    ("text", "network", "host", "port"),
    [
        ("10.0.0.0/8", "10.0.0.0/8", None, None),
        ("10.1.2.3:8080", "10.1.2.3/32", None, 8080),
        ("fd00::/8", "fd00::/8", None, None),
        ("[fd00::1]:9090", "fd00::1/128", None, 9090),
        ("Prometheus.Monitoring.svc.", None, "prometheus.monitoring.svc", None),
        ("*.example.com:443", None, "*.example.com", 443),
    ],
)
def test_rules_are_addresses_cidrs_or_names_with_an_optional_port(
    text: str, network: str | None, host: str | None, port: int | None
) -> None:
    rule = parse_rule(text, "--analysis-allow")
    assert (str(rule.network) if rule.network else None, rule.host, rule.port) == (network, host, port)
    assert rule.name == f"--analysis-allow {text}"


@pytest.mark.parametrize("text", ["", "a b", "10.0.0.1:0", "host:http", "[::1", "[::1]9090", ":80"])
def test_a_rule_that_is_none_is_refused_at_start(text: str) -> None:
    with pytest.raises(ValueError, match="--analysis-deny"):
        parse_rule(text, "--analysis-deny")


def resolving(answers: dict[str, list[str]]) -> Egress:
    """POLICY with a resolver that knows only `answers`."""

    async def resolve(host: str, _port: int) -> list[Address]:
        if host not in answers:
            raise OSError(f"unknown host {host}")
        return [ipaddress.ip_address(address) for address in answers[host]]

    return Egress(POLICY.allow, POLICY.deny, POLICY.refused, resolve)


async def test_a_name_is_checked_on_every_address_it_resolves_to() -> None:
    policy = resolving({"metadata.internal": ["169.254.169.254"], "mixed": ["169.254.169.254", "127.0.0.1"]})
    with pytest.raises(Refused) as refused:
        await policy.pin("probe", httpx.URL("http://metadata.internal/latest"))
    assert str(refused.value) == (
        "probe: metadata.internal resolves to 169.254.169.254, which is refused by the egress rule "
        "link-local (169.254.0.0/16)"
    )
    pinned = await policy.pin("probe", httpx.URL("https://mixed:8443/x?y=1"))
    assert str(pinned.url) == "https://127.0.0.1:8443/x?y=1"  # the checked address, nothing else
    assert (pinned.host_header, pinned.extensions) == ("mixed:8443", {"sni_hostname": "mixed"})
    with pytest.raises(Unmeasurable, match="cannot resolve nowhere"):
        await policy.pin("probe", httpx.URL("http://nowhere/"))


async def test_localhost_resolved_by_the_system_is_refused() -> None:
    with pytest.raises(
        Refused,
        match=r"localhost resolves to (127\.0\.0\.1|::1), which is refused by the egress rule loopback",
    ):
        await Egress().pin("probe", httpx.URL("http://localhost:9/"))


async def test_a_refused_web_metric_is_never_sent(loopback: Loopback) -> None:
    port = loopback.url.rsplit(":", 1)[1]
    spec = Web.model_validate({"url": f"http://127.0.0.1:{port}/ok", "timeoutSeconds": 2})
    with pytest.raises(Refused, match=r"127\.0\.0\.1 is refused by the egress rule loopback"):
        await web.fetch(spec, {}, egress=Egress())
    assert loopback.seen == []


async def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(loopback: Loopback) -> None:
    loopback.answers["/ok"] = (200, b'{"ok": true}')
    port = loopback.url.rsplit(":", 1)[1]
    spec = Web.model_validate({"url": f"http://checked.example:{port}/ok", "jsonPath": "$.ok"})
    assert await web.fetch(spec, {}, egress=resolving({"checked.example": ["127.0.0.1"]})) is True
    assert loopback.seen[-1].headers["host"] == f"checked.example:{port}"


class _Redirecting(BaseHTTPRequestHandler):
    """/to/<url>: a redirect there; /api/v1/query: Prometheus' answer."""

    def do_GET(self) -> None:
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"status": "success", "data": {"resultType": "scalar", "result": [1, "7"]}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def redirecting() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


async def test_redirects_are_followed_only_within_the_policy(redirecting: str) -> None:
    assert await prometheus.query(f"{redirecting}/to/{redirecting}", "up", egress=POLICY) == 7.0
    with pytest.raises(Refused, match=r"169\.254\.169\.254 is refused by the egress rule link-local"):
        await prometheus.query(f"{redirecting}/to/http://169.254.169.254/latest", "up", egress=POLICY)


async def test_an_answer_reaches_a_message_short_and_printable(loopback: Loopback) -> None:
    loopback.answers["/down"] = (503, b"\x1b[31mred\r\nInjected: line\x00" + b"x" * 1000)
    spec = Web.model_validate({"url": f"{loopback.url}/down", "timeoutSeconds": 2})
    with pytest.raises(Unmeasurable) as error:
        await web.fetch(spec, {}, egress=POLICY)
    quoted = str(error.value).partition("answered HTTP 503: ")[2]
    assert quoted.startswith("[31mred Injected: line xxx")
    assert len(quoted) == bounded.EXCERPT
    assert all(character.isprintable() for character in quoted)


class _Secrets(Kube):
    """The apiserver as the analyst reads Secrets: these, by name, in their namespace."""

    def __init__(self, *secrets: Object) -> None:  # no connection: nothing else is asked
        self.secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in secrets}

    async def get(self, kind: Kind, namespace: str | None, name: str) -> Object | None:
        assert kind == SECRET
        return self.secrets.get((namespace or "", name))


def _secret(name: str, namespace: str, labels: dict[str, str]) -> Object:
    token = base64.b64encode(b"Bearer s3cret").decode()
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": {"token": token}}


WEB = Web.model_validate(
    {
        "url": "http://example.com",
        "headers": [
            {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "token", "key": "token"}}}
        ],
    }
)


async def test_a_secret_is_read_only_with_its_label_and_in_the_rollouts_namespace() -> None:
    consenting = _secret("token", "team-a", {SECRET_CONSENT_LABEL: "true"})
    analyst = Analyst(_Secrets(consenting, _secret("token", "team-b", {})))
    assert await analyst._headers(WEB, Subject("team-a", {})) == {"Authorization": "Bearer s3cret"}
    with pytest.raises(Unmeasurable) as refused:
        await analyst._headers(WEB, Subject("team-b", {}))
    assert str(refused.value) == (
        f"header Authorization: Secret token is not labelled {SECRET_CONSENT_LABEL}=true, "
        "so analysis may not read it (label it to consent)"
    )
    assert "s3cret" not in str(refused.value)
    with pytest.raises(Unmeasurable, match="Secret token not found in team-c"):
        await analyst._headers(WEB, Subject("team-c", {}))
