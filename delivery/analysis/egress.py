"""Where analysis may send a request: the egress policy, checked on the address actually connected to.

A metric's URL and a Prometheus or judge address are written by whoever may write a template, and
the controller fetches them from its own pod, reading back a value or an excerpt into the
Rollout's status. Without a policy that is a way into what only the controller's network position
reaches: the cloud metadata endpoint, the kubelet, the apiserver, admin ports on loopback.

So before every connection (each redirect's too) the host is resolved here, each address checked,
and the request sent to an address that passed, with the name kept for the Host header and for TLS
(SNI and the certificate's check): a DNS answer that changes between the check and the connection
cannot move the request elsewhere.

The rules, in order:
1. `--analysis-deny` rules refuse what they match, always.
2. Built-in refusals: link-local (metadata endpoints), loopback, the unspecified address (which
   Linux routes to loopback), the kubelet's port 10250 and the controller's own apiserver. An
   `--analysis-allow` rule lifts one only where it is at least as narrow (`127.0.0.1` lifts
   loopback for that address; `0.0.0.0/0` lifts nothing, and no rule without the apiserver's
   port lifts the apiserver).
3. With any `--analysis-allow` rule, only what one matches may be reached.

A rule is an address or CIDR, or a DNS name (`*.example.com` for its subdomains), each with an
optional `:port` (`[v6]:port` for IPv6). A name rule matches the URL's host as written; its
addresses still pass through the refusals.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import httpx

from delivery.analysis.provider import Unmeasurable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[Address]]]
KUBELET_PORT = 10250


class Refused(Unmeasurable):
    """A request the policy does not let analysis make: an error measurement naming the rule."""


@dataclass(frozen=True)
class Rule:
    """One egress rule; `name` is how a refusal names it."""

    name: str
    network: Network | None = None  # None: any address (or a name rule)
    host: str | None = None  # a DNS name, lowercased; `*.` in front: its subdomains
    port: int | None = None  # None: any port

    def matches(self, host: str, address: Address, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            name = host.lower().rstrip(".")
            if self.host.startswith("*."):
                return name.endswith(self.host[1:])
            return name == self.host
        return self.network is None or address in self.network

    def lifts(self, refusal: Rule) -> bool:
        """Whether this allow rule names no more than `refusal` does, so it may make an exception."""
        if self.network is None or (refusal.port is not None and self.port != refusal.port):
            return False
        if refusal.network is None:
            return True
        return self.network.version == refusal.network.version and self.network.subnet_of(
            refusal.network  # type: ignore[arg-type]  # same version, checked just before
        )


def _network(text: str) -> Network:
    return ipaddress.ip_network(text, strict=False)


BUILTIN = (
    Rule("link-local (169.254.0.0/16)", _network("169.254.0.0/16")),
    Rule("link-local (fe80::/10)", _network("fe80::/10")),
    Rule("loopback (127.0.0.0/8)", _network("127.0.0.0/8")),
    Rule("loopback (::1)", _network("::1/128")),
    Rule("unspecified (0.0.0.0/8)", _network("0.0.0.0/8")),
    Rule("unspecified (::)", _network("::/128")),
    Rule(f"kubelet (port {KUBELET_PORT})", port=KUBELET_PORT),
)
"""Refused unless an allow rule as narrow lifts them."""


def parse_rule(text: str, flag: str) -> Rule:
    """`text` of `flag` (`--analysis-allow`, say) as a rule; ValueError when it is none."""
    spec = text.strip()
    name = f"{flag} {spec}"
    port: int | None = None
    if spec.startswith("["):  # [v6] or [v6/len], maybe :port after
        inside, bracket, rest = spec[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{flag} {spec!r}: write an IPv6 rule with a port as [address]:port")
        spec, port = inside, _port(rest[1:], flag, text) if rest else None
    elif spec.count(":") == 1:
        spec, _colon, digits = spec.partition(":")
        port = _port(digits, flag, text)
    if not spec:
        raise ValueError(f"{flag} {text!r}: no address, CIDR or host name")
    try:
        return Rule(name, _network(spec), port=port)
    except ValueError:
        pass
    host = spec.lower().rstrip(".")
    labels = host[2:] if host.startswith("*.") else host
    if not all(label and label.replace("-", "").isalnum() for label in labels.split(".")):
        raise ValueError(f"{flag} {text!r}: not an address, a CIDR or a host name") from None
    return Rule(name, host=host, port=port)


def _port(digits: str, flag: str, text: str) -> int:
    if not digits.isdigit() or not 0 < int(digits) < 65536:
        raise ValueError(f"{flag} {text!r}: the port must be a number from 1 to 65535")
    return int(digits)


async def system_resolve(host: str, port: int) -> list[Address]:
    """The addresses `host` resolves to, in the resolver's order (the event loop's getaddrinfo)."""
    answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(answer[4][0]) for answer in answers))


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unmapped(address: Address) -> Address:
    """`::ffff:169.254.169.254` is 169.254.169.254 on the wire: checked as that."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _shown(address: Address, port: int, rule: Rule) -> str:
    text = f"[{address}]" if address.version == 6 and rule.port is not None else str(address)
    return f"{text}:{port}" if rule.port is not None else text


@dataclass(frozen=True)
class Pinned:
    """Where one request goes: `url` names the checked address; the name stays in Host and TLS."""

    url: httpx.URL
    host_header: str
    extensions: dict[str, str]


@dataclass(frozen=True)
class Egress:
    """The policy (see the module's docstring); the default refuses the built-ins only."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    refused: tuple[Rule, ...] = BUILTIN
    resolve: Resolver = field(default=system_resolve, compare=False)

    @classmethod
    def from_flags(cls, allow: Iterable[str], deny: Iterable[str]) -> Egress:
        return cls(
            tuple(parse_rule(text, "--analysis-allow") for text in allow),
            tuple(parse_rule(text, "--analysis-deny") for text in deny),
        )

    def refusing(self, name: str, addresses: Sequence[Address], port: int | None) -> Egress:
        """This policy refusing `addresses` (at `port`) too, under the rule `name` (the apiserver's)."""
        extra = tuple(Rule(name, _network(str(address)), port=port) for address in addresses)
        return replace(self, refused=(*extra, *self.refused))

    async def with_apiserver(self, server: str) -> Egress:
        """This policy refusing the apiserver at `server` (a URL, the client's), its name resolved
        now: a metric must not call the API with the controller's network position."""
        url = httpx.URL(server)
        port = url.port or (443 if url.scheme == "https" else 80)
        literal = _literal(url.host)
        try:
            addresses = [literal] if literal is not None else await self.resolve(url.host, port)
        except OSError:  # unresolvable now: no address to refuse, nor to reach
            addresses = []
        return self.refusing(f"apiserver ({url.host}:{port})", addresses, port)

    def refusal(self, host: str, address: Address, port: int) -> Rule | None:
        """The rule that refuses a connection to `address`:`port` for `host`; None when allowed."""
        address = _unmapped(address)
        for rule in self.deny:
            if rule.matches(host, address, port):
                return rule
        allowed = [rule for rule in self.allow if rule.matches(host, address, port)]
        for rule in self.refused:
            if rule.matches(host, address, port) and not any(a.lifts(rule) for a in allowed):
                return rule
        if self.allow and not allowed:
            listed = ", ".join(rule.name.partition(" ")[2] for rule in self.allow)
            return Rule(f"--analysis-allow (only {listed})")
        return None

    async def pin(self, who: str, url: httpx.URL) -> Pinned:
        """`url` sent to an address of its host that the policy allows; Refused otherwise."""
        host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
        literal = _literal(host)
        try:
            addresses = [literal] if literal is not None else await self.resolve(host, port)
        except OSError as error:
            raise Unmeasurable(f"{who} unreachable: cannot resolve {host}: {error}") from error
        first: tuple[Address, Rule] | None = None
        for address in addresses:
            rule = self.refusal(host, address, port)
            if rule is None:
                extensions = {"sni_hostname": host} if literal is None and url.scheme == "https" else {}
                return Pinned(url.copy_with(host=str(address)), url.netloc.decode(), extensions)
            first = first or (address, rule)
        if first is None:
            raise Unmeasurable(f"{who} unreachable: {host} resolves to no address")
        address, rule = first
        shown = _shown(address, port, rule)
        subject = shown if literal is not None else f"{host} resolves to {shown}, which"
        raise Refused(f"{who}: {subject} is refused by the egress rule {rule.name}")
