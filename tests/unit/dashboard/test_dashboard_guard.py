"""The dashboard's request check: a Host it is reached by; for a POST its token, Origin and JSON."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.dashboard.guard import local_hosts, refusal

HOSTS = local_hosts("127.0.0.1", 3100)
SECRET = "s3cret-token"
GOOD: dict[str, Any] = {
    "host": "127.0.0.1:3100",
    "origin": "http://127.0.0.1:3100",
    "content_type": "application/json",
    "token": SECRET,
}


def check(method: str = "POST", **changed: Any) -> str | None:
    return refusal(method, **{**GOOD, **changed}, secret=SECRET, hosts=HOSTS)


def test_the_hosts_of_a_local_server() -> None:
    assert set(HOSTS) == {"127.0.0.1:3100", "localhost:3100", "[::1]:3100"}
    assert "[::1]:8080" in local_hosts("::1", 8080)


def test_the_page_itself_may_get_and_post() -> None:
    assert check("GET", origin=None, token=None, content_type=None) is None
    assert check() is None
    assert check(host="localhost:3100", origin="http://localhost:3100") is None
    assert check(content_type="application/json; charset=utf-8") is None


@pytest.mark.parametrize(
    ("method", "changed", "said"),
    [
        ("GET", {"host": "evil.example:3100"}, "unexpected Host"),  # DNS rebinding
        ("POST", {"host": "127.0.0.1:3101", "origin": "http://127.0.0.1:3101"}, "unexpected Host"),
        ("POST", {"origin": "http://evil.example"}, "cross-origin"),
        ("POST", {"origin": None}, "cross-origin"),
        ("POST", {"origin": "http://localhost:3100"}, "cross-origin"),  # another origin than the Host
        ("POST", {"content_type": "application/x-www-form-urlencoded"}, "JSON"),  # a cross-site form
        ("POST", {"token": None}, "token"),
        ("POST", {"token": "s3cret-tokeN"}, "token"),
        ("PUT", {}, "not allowed"),
        ("DELETE", {}, "not allowed"),
    ],
)
def test_a_request_from_elsewhere_is_refused(method: str, changed: dict[str, Any], said: str) -> None:
    refused = check(method, **changed)
    assert refused is not None
    assert said in refused


def test_without_hosts_any_host_may_read_but_a_post_still_needs_the_token() -> None:
    assert refusal("GET", host="delivery.ns.svc:3100", origin=None, content_type=None, token=None,
                   secret=SECRET, hosts=None) is None  # fmt: skip
    assert "token" in (refusal("POST", host="d:1", origin="http://d:1", content_type="application/json",
                               token="x", secret=SECRET, hosts=None) or "")  # fmt: skip
