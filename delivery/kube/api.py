"""The only code that talks to the apiserver: a thin asyncio REST layer on the kubernetes client's
connection pool (its aiohttp session, TLS and credentials), with orjson on the wire.

Objects are plain dicts (what the apiserver sends), addressed by a `Kind`. Writes are either
server-side apply with one field manager, or merge patches guarded by `metadata.resourceVersion`
so that a decision taken on a stale read is refused (409) instead of overwriting newer state.
Every request is counted by verb, so tests and benchmarks can say how many writes a reconcile made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from kubernetes.aio.client import ApiClient

from delivery.kube.failpoints import Failpoints
from delivery.kube.fence import Fence, FencedBody

FIELD_MANAGER = "delivery"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WATCH_SECONDS = 240  # the apiserver ends a watch after this; the watcher starts another
REQUEST_SECONDS = 30.0  # every other request: a whole-request deadline, never the client's none

Object = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """Where a kind of object lives in the API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        base = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


class KubeError(RuntimeError):
    """A request the apiserver refused; `status` is the HTTP status, `reason` its Status reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404


class Kube:
    """Async access to the apiserver through one `kubernetes.aio` ApiClient.

    A Kube given a `fence` sends no write unless the fence says this replica's Lease is valid;
    one given `failpoints` counts its writes and lets a test kill or stall the process at one.
    `on_error` is told of each request refused or failed, by verb and HTTP status (0: no answer):
    the process counts them in its metrics (`delivery.ops.metrics`), which this layer does not know."""

    def __init__(
        self,
        client: ApiClient,
        field_manager: str = FIELD_MANAGER,
        *,
        fence: Fence | None = None,
        failpoints: Failpoints | None = None,
        on_error: Callable[[str, int], None] | None = None,
    ) -> None:
        self.client = client
        self.field_manager = field_manager
        self.fence = fence
        self.failpoints = failpoints
        self.on_error = on_error
        self.requests: Counter[str] = Counter()

    def managed_as(self, field_manager: str) -> Kube:
        """The same connection writing as another field manager; its requests are counted here too,
        so the process's count is whole."""
        if field_manager == self.field_manager:
            return self
        other = Kube(
            self.client, field_manager, fence=self.fence, failpoints=self.failpoints, on_error=self.on_error
        )
        other.requests = self.requests
        return other

    def guarded(self, fence: Fence | None, failpoints: Failpoints | None) -> Kube:
        """The same connection and counts, its writes fenced and counted for failpoints."""
        other = Kube(
            self.client, self.field_manager, fence=fence, failpoints=failpoints, on_error=self.on_error
        )
        other.requests = self.requests
        return other

    @property
    def writes(self) -> int:
        return sum(count for verb, count in self.requests.items() if verb in WRITE_VERBS)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Object:
        response = await self._send(method, path, body=body, content_type=content_type, query=query)
        data = await response.read()
        if response.status >= 400:
            self._failed(method, response.status)
            raise _kube_error(response.status, data.decode(errors="replace"))
        return orjson.loads(data) if data else {}

    def _failed(self, method: str, status: int) -> None:
        if self.on_error is not None:
            self.on_error(method, status)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        timeout: float = REQUEST_SECONDS,
    ) -> aiohttp.ClientResponse:
        """One request on the kubernetes client's own session, its credentials and TLS, the body
        encoded here (orjson: the standard library's json, both ways, was a tenth of the controller's
        CPU in a release of 1,000 Rollouts). A write is fenced (`delivery.kube.fence`) and counted
        for failpoints. The response is the caller's to read; its status is not judged here."""
        rest = self.client.rest_client
        url = self.client.configuration.host + path
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": "application/json", "Content-Type": content_type}
        await self.client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        write = method in WRITE_VERBS
        number = await self.failpoints.before_write(method, path) if write and self.failpoints else 0
        fence = self.fence if write else None
        encoded = None if body is None else orjson.dumps(body)
        data: bytes | FencedBody | None = encoded
        if fence is not None:
            fence.check(method, path)  # before the client even starts: the cheap refusal
            data = FencedBody(encoded or b"{}", fence, method, path)
        if rest.pool_manager is None:
            rest.pool_manager = rest._create_pool_manager()  # the hook its docstring names for this
        self.requests[method] += 1
        try:
            response = await rest.pool_manager.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                **_transport(rest),
            )
        except Exception as error:
            if fence is not None and not fence.valid:  # refused by the body's own check, as it was to leave
                raise fence.refusal(method, path) from error
            raise
        if number and self.failpoints is not None:
            await self.failpoints.after_write(number, method, path)
        return response

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        bookmarks: bool = False,
    ) -> AsyncIterator[tuple[str, Object]]:
        """The events of one watch request (type, object) as they come; it ends when the apiserver
        closes it after a few minutes. An ERROR event is raised as a KubeError: 410 when the
        resourceVersion is too old (list and watch again). With `bookmarks`, BOOKMARK events carry
        a newer resourceVersion to resume from."""
        query = {
            "watch": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
            "allowWatchBookmarks": "true" if bookmarks else "false",
        }
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if resource_version:
            query["resourceVersion"] = resource_version
        response = await self._send("GET", kind.path(namespace), query=query, timeout=WATCH_SECONDS + 30)
        if response.status >= 400:
            self._failed("GET", response.status)
            raise _kube_error(response.status, (await response.read()).decode(errors="replace"))
        try:
            while line := await response.content.readline():
                event = orjson.loads(line)
                if event["type"] == "ERROR":
                    status = event.get("object") or {}
                    code, reason = status.get("code", 0), status.get("reason", "")
                    raise KubeError(code, reason, status.get("message", ""))
                yield event["type"], event["object"]
        finally:
            response.release()

    async def get(self, kind: Kind, namespace: str | None, name: str) -> Object | None:
        try:
            return await self.request("GET", kind.path(namespace, name))
        except KubeError as error:
            if error.not_found:
                return None
            raise

    async def list(self, kind: Kind, namespace: str | None = None, label_selector: str = "") -> list[Object]:
        query = {"labelSelector": label_selector} if label_selector else None
        items: list[Object] = (await self.request("GET", kind.path(namespace), query=query))["items"]
        return items

    async def create(self, kind: Kind, namespace: str | None, body: Object) -> Object:
        return await self.request("POST", kind.path(namespace), body=body)

    async def apply(self, kind: Kind, body: Object, *, subresource: str = "") -> Object:
        """Server-side apply of `body` (which names itself) with our field manager."""
        metadata = body["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true"}
        path = kind.path(metadata.get("namespace"), metadata["name"], subresource)
        return await self.request("PATCH", path, body=body, content_type=APPLY, query=query)

    async def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str = "",
        content_type: str = MERGE,
    ) -> Object:
        return await self.request(
            "PATCH",
            kind.path(namespace, name, subresource),
            body=patch,
            content_type=content_type,
            query={"fieldManager": self.field_manager},
        )

    async def patch_guarded(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        resource_version: str,
        patch: Object,
        *,
        subresource: str = "",
    ) -> Object:
        """A merge patch that the apiserver applies only if the object is still at `resource_version`."""
        guarded = {**patch, "metadata": {**patch.get("metadata", {}), "resourceVersion": resource_version}}
        return await self.patch(kind, namespace, name, guarded, subresource=subresource)

    async def delete(
        self, kind: Kind, namespace: str | None, name: str, *, propagation: str | None = None
    ) -> None:
        """Delete, gone already included; `propagation` (Background, Foreground, Orphan) says what
        becomes of its dependents: a Job deleted through the API orphans its pods unless told."""
        options = {"propagationPolicy": propagation} if propagation else None
        try:
            await self.request("DELETE", kind.path(namespace, name), body=options)
        except KubeError as error:
            if not error.not_found:
                raise


def _transport(rest: Any) -> dict[str, Any]:
    """What the kubernetes client adds to each request from its configuration: the TLS server name
    and the proxy (kubernetes.aio's RESTClientObject.request, which this layer does not go through)."""
    extra: dict[str, Any] = {}
    if rest.configuration.tls_server_name:
        extra["server_hostname"] = rest.configuration.tls_server_name
    if rest.proxy:
        extra["proxy"] = rest.proxy
    if rest.proxy_headers:
        extra["proxy_headers"] = rest.proxy_headers
    return extra


def _kube_error(status: int, body: str) -> KubeError:
    try:
        document = orjson.loads(body)
    except ValueError:
        return KubeError(status, "", body[:500])
    return KubeError(status, document.get("reason", ""), document.get("message", body[:500]))
