"""Whether a request may be served: the check of every request's Host and of every POST: pure.

The dashboard acts with the credentials of whoever started it, so a page of another site open in
the same browser must not be able to make it act (cross-site request forgery) or read it (DNS
rebinding: a name of the attacker's that resolves to 127.0.0.1). So:
- the Host header must be one the server is reached by (its address or localhost, with its port),
  which a rebound name is not;
- a POST must carry the server's secret token, which only its own page holds (the page embeds it;
  another site cannot read the page), in a header a cross-site form cannot set;
- a POST's Origin must be the server itself, and its body JSON (a cross-site form cannot send that
  without the browser asking first, and the server answers no such question).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection

TOKEN_HEADER = "X-Delivery-Token"  # noqa: S105 - the header's name, not a secret


def local_hosts(address: str, port: int) -> frozenset[str]:
    """The Host headers of a server on `address`:`port` reached as itself or as localhost."""
    names = {address, "localhost", "127.0.0.1", "[::1]"}
    if ":" in address and not address.startswith("["):
        names.add(f"[{address}]")
    return frozenset(f"{name}:{port}" for name in names if ":" not in name or name.startswith("["))


def refusal(  # noqa: PLR0911 - one return per check reads as the list above
    method: str,
    *,
    host: str | None,
    origin: str | None,
    content_type: str | None,
    token: str | None,
    secret: str,
    hosts: Collection[str] | None,
) -> str | None:
    """Why the request is refused, or None (one reason per check, in order). `hosts` None: any
    Host (the controller's read-only page, reached through a Service by whatever name)."""
    if hosts is not None and host not in hosts:
        return f"unexpected Host header {host!r}"
    if method in ("GET", "HEAD"):
        return None
    if method != "POST":
        return f"method {method} not allowed"
    if origin is None or origin != f"http://{host}":
        return f"cross-origin request refused (Origin {origin!r})"
    if (content_type or "").split(";")[0].strip() != "application/json":
        return "a JSON body is required"
    if token is None or not hmac.compare_digest(token.encode(), secret.encode()):
        return "missing or wrong request token: reload the page"
    return None
