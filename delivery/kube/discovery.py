"""What this apiserver serves, discovered rather than assumed.

Our clusters run different Kubernetes minors, and the APIs the controller writes moved between
them (Ingress from `extensions/v1beta1` to `networking.k8s.io/v1`, HorizontalPodAutoscaler to
`autoscaling/v2`) or are not Kubernetes' at all (Gateway API's HTTPRoute is served by CRDs of a
release the cluster's owner chose, `v1` since Gateway API 1.0, `v1beta1` before). So every kind
whose version differs between clusters is an `Api` here, with the versions the controller can
speak, preferred first, and the version used is the first one the server serves (`choose`,
pure). A kind served in none of them is `ApiNotServed`: the object that needs it gets a condition
naming the kind and the versions looked for, and nothing crash-loops.

`Discovery` reads `/version` and the API groups once at start (a handful of GETs) and keeps the
answer (`Served`). It asks again only when told the answer may be old (`stale`: a kind was found
missing, a watch or a read got a 404 for the kind itself, as after a CRD was installed or
removed), and then at most once per `REFRESH_AFTER` seconds: an idle controller sends nothing.

What has no discovery endpoint (CEL validation rules, server-side apply, field validation) came
with a known minor; `missing_features` names what the server's minor lacks of what the CRDs and
the writes rely on.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from delivery.kube.api import Kind, Kube, KubeError, Object

log = logging.getLogger(__name__)

REFRESH_AFTER = 30.0
"""Seconds between two discoveries asked for by `stale`: a kind still missing costs a few GETs
this often while something needs it, never more."""


@dataclass(frozen=True)
class Api:
    """A kind whose API version differs between clusters, and the versions we can speak to it."""

    kind: str
    plural: str
    versions: tuple[str, ...]
    """`group/version`, preferred first: the newest the controller's code is written for."""
    namespaced: bool = True

    def at(self, version: str) -> Kind:
        return Kind(version, self.kind, self.plural, self.namespaced)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(version.rpartition("/")[0] for version in self.versions))


INGRESS = Api(
    "Ingress",
    "ingresses",
    # networking.k8s.io/v1beta1: Kubernetes 1.14 to 1.21; extensions/v1beta1: until 1.21.
    ("networking.k8s.io/v1", "networking.k8s.io/v1beta1", "extensions/v1beta1"),
)
HORIZONTAL_POD_AUTOSCALER = Api("HorizontalPodAutoscaler", "horizontalpodautoscalers", ("autoscaling/v2",))
HTTP_ROUTE = Api(
    "HTTPRoute",
    "httproutes",
    # v1beta1: Gateway API 0.6 to 0.8 (still served beside v1 by the later releases' CRDs).
    ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"),
)
APIS = (INGRESS, HORIZONTAL_POD_AUTOSCALER, HTTP_ROUTE)


class ApiNotServed(LookupError):
    """The cluster serves `api` in none of the versions the controller speaks."""

    def __init__(self, api: Api) -> None:
        super().__init__(
            f"{api.kind} is not served by this cluster in any version the controller speaks "
            f"({', '.join(api.versions)})"
        )
        self.api = api


def choose(api: Api, served: Collection[str]) -> Kind | None:
    """The preferred version of `api` among those the server serves it in; None: none of ours."""
    return next((api.at(version) for version in api.versions if version in served), None)


@dataclass(frozen=True, order=True)
class ServerVersion:
    """A Kubernetes version as `/version` (or `kubectl version -o json`) reports it."""

    major: int
    minor: int
    git_version: str = field(compare=False)

    @classmethod
    def from_wire(cls, body: Mapping[str, object]) -> ServerVersion:
        """From a version document; a minor like "33+" (some providers add a suffix) is read as 33,
        and one that is missing is read from gitVersion (`v1.33.2-gke.100`)."""
        git = str(body.get("gitVersion") or "")
        from_git = re.match(r"v?(\d+)\.(\d+)", git)
        major = _number(body.get("major")) or (int(from_git.group(1)) if from_git else 0)
        minor = _number(body.get("minor")) or (int(from_git.group(2)) if from_git else 0)
        return cls(major, minor, git)


def _number(value: object) -> int | None:
    digits = re.match(r"\d+", str(value or ""))
    return int(digits.group()) if digits else None


@dataclass(frozen=True)
class Feature:
    """Something the controller relies on that came with a Kubernetes minor and has no discovery."""

    name: str
    since: int
    """The first minor where it is on by default (GA or beta on)."""


FEATURES = (
    Feature("server-side apply (every write of the controllers)", 22),
    Feature("fieldValidation=Strict (unknown fields refused at apply)", 27),
    Feature("CEL validation rules in the CRDs (x-kubernetes-validations)", 29),
    Feature("reason and fieldPath of the CRDs' CEL rules", 30),
)


def missing_features(server: ServerVersion) -> list[str]:
    """What the CRDs and the writes rely on that a server of this version does not have."""
    if server.major != 1:
        return []
    return [f"{item.name}: since 1.{item.since}" for item in FEATURES if server.minor < item.since]


MAX_KUBECTL_SKEW = 1
"""Kubernetes' own promise: a kubectl within one minor of the apiserver."""


def kubectl_skew(client: ServerVersion, server: ServerVersion) -> str | None:
    """A warning when kubectl is further than one minor from the server; None within the promise."""
    if client.major != server.major or abs(client.minor - server.minor) > MAX_KUBECTL_SKEW:
        return (
            f"kubectl {client.git_version} is {_distance(client, server)} from the server's "
            f"{server.git_version}: kubectl is supported within {MAX_KUBECTL_SKEW} minor version of "
            f"the server; use a kubectl {server.major}.{server.minor - MAX_KUBECTL_SKEW} to "
            f"{server.major}.{server.minor + MAX_KUBECTL_SKEW}"
        )
    return None


def _distance(client: ServerVersion, server: ServerVersion) -> str:
    if client.major != server.major:
        return "of another major version"
    gap = abs(client.minor - server.minor)
    return f"{gap} minor versions {'older' if client.minor < server.minor else 'newer'}"


@dataclass(frozen=True)
class Served:
    """One discovery's answer: the server's version and where each `Api` is served."""

    server: ServerVersion | None = None
    versions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """By kind: the group versions that serve it."""

    def kind(self, api: Api) -> Kind | None:
        return choose(api, self.versions.get(api.kind, frozenset()))

    def require(self, api: Api) -> Kind:
        kind = self.kind(api)
        if kind is None:
            raise ApiNotServed(api)
        return kind

    def chosen(self, apis: Collection[Api] = APIS) -> dict[str, str | None]:
        """The version used per kind (None: not served), as ClusterProfile's status records it."""
        return {api.kind: (kind.api_version if (kind := self.kind(api)) else None) for api in apis}


def to_read(groups: Object, apis: Collection[Api] = APIS) -> list[str]:
    """The group versions of `apis` that `/apis` (an APIGroupList) lists: those whose resources
    are read next, to see which of them serve the kind."""
    listed = {item["groupVersion"] for group in groups.get("groups") or [] for item in group["versions"]}
    return sorted({version for api in apis for version in api.versions if version in listed})


def served_from(resources: Mapping[str, Object], apis: Collection[Api] = APIS) -> dict[str, frozenset[str]]:
    """Where each of `apis` is served, from the resource lists read (`/apis/<group>/<version>`, by
    group version; one not listed or gone is absent): pure."""

    def serves(api: Api, version: str) -> bool:
        listing = resources.get(version) or {}
        return any(item.get("name") == api.plural for item in listing.get("resources") or [])

    return {api.kind: frozenset(v for v in api.versions if serves(api, v)) for api in apis}


class Discovery:
    """The cluster's `Served`, read once and again when told it may be old (see the module)."""

    def __init__(self, kube: Kube, apis: Collection[Api] = APIS, *, refresh_after: float = REFRESH_AFTER):
        self.kube = kube
        self.apis = tuple(apis)
        self.refresh_after = refresh_after
        self.served = Served()
        self.known = False  # read once at least
        self._stale = False
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> Served:
        """Read what the server serves now."""
        async with self._lock:
            return await self._read()

    async def _read(self) -> Served:
        version = ServerVersion.from_wire(await self.kube.request("GET", "/version"))
        groups = await self.kube.request("GET", "/apis")
        resources = {gv: await self._resources(gv) for gv in to_read(groups, self.apis)}
        before, self.served = self.served, Served(version, served_from(resources, self.apis))
        self.known, self._stale, self._read_at = True, False, time.monotonic()
        chosen = self.served.chosen(self.apis)
        if before.chosen(self.apis) != chosen or before.server != version:
            log.info("server %s; API versions used: %s", version.git_version, chosen)
            for missing in missing_features(version):
                log.error("this server lacks what the controller relies on: %s", missing)
        return self.served

    async def _resources(self, group_version: str) -> Object:
        try:
            return await self.kube.request("GET", f"/apis/{group_version}")
        except KubeError as error:
            if error.not_found:  # removed between the two reads (a CRD deleted)
                return {}
            raise

    def stale(self) -> None:
        """A kind was missing or a request for one got a 404: read again at the next `current`."""
        self._stale = True

    def _due(self) -> bool:
        return not self.known or (self._stale and time.monotonic() >= self._read_at + self.refresh_after)

    async def current(self) -> Served:
        """The last answer, read again first when it was never read or is stale and due (once, however
        many reconciles ask at the same moment)."""
        if self._due():
            async with self._lock:
                if self._due():
                    await self._read()
        return self.served
