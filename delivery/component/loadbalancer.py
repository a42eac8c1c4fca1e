"""Client of our company's load balancer service (`luoji-slb`), the REST contract in docs/components.md.

The service has no public implementation, so the contract is ours; in short:

    POST   /v1/loadbalancers                 create; header X-Client-Token makes it idempotent
    GET    /v1/loadbalancers/{id}            one load balancer (404: gone)
    GET    /v1/loadbalancers?clientToken=T  the one created with token T, as a list of 0 or 1
    PUT    /v1/loadbalancers/{id}/backends   replace its listeners and backends (idempotent)
    DELETE /v1/loadbalancers/{id}            release it (404: already gone)

Errors are `{"error": {"code": "...", "message": "..."}}` with a 4xx or 5xx status.

Every call is retried on 5xx, 429, timeouts and dropped connections, with exponential backoff.
Retrying a create is safe only because of the client token: the controller derives it from the
Component's UID, so a create retried after a timeout, or redone by a controller restarted
between creating and recording the id, finds the load balancer made the first time.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

CLIENT_TOKEN_HEADER = "X-Client-Token"  # noqa: S105 - a header name, not a secret
PREFIX = "/v1/loadbalancers"

log = logging.getLogger(__name__)


class Protocol(enum.StrEnum):
    TCP = "TCP"
    UDP = "UDP"


@dataclass(frozen=True, order=True)
class Listener:
    """A port the load balancer listens on, forwarded to `backend_port` on every backend."""

    port: int
    backend_port: int
    protocol: Protocol = Protocol.TCP

    def wire(self) -> dict[str, Any]:
        return {"port": self.port, "protocol": self.protocol.value, "backendPort": self.backend_port}


@dataclass(frozen=True)
class LoadBalancer:
    id: str
    name: str
    address: str
    client_token: str
    listeners: tuple[Listener, ...] = ()
    backends: tuple[str, ...] = ()
    """Backend addresses (node IPs): every listener forwards to each of them."""

    @classmethod
    def from_wire(cls, document: Mapping[str, Any]) -> LoadBalancer:
        try:
            return cls(
                id=str(document["id"]),
                name=str(document["name"]),
                address=str(document["address"]),
                client_token=str(document.get("clientToken", "")),
                listeners=tuple(
                    sorted(
                        Listener(int(item["port"]), int(item["backendPort"]), Protocol(item["protocol"]))
                        for item in document.get("listeners", [])
                    )
                ),
                backends=tuple(sorted(str(item["address"]) for item in document.get("backends", []))),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise LoadBalancerError(0, "BadResponse", f"not a load balancer: {error!r}") from error

    def binds(self, listeners: Sequence[Listener], backends: Sequence[str]) -> bool:
        """Whether it already forwards exactly `listeners` to exactly `backends`."""
        return self.listeners == tuple(sorted(listeners)) and self.backends == tuple(sorted(backends))


class LoadBalancerError(RuntimeError):
    """A call the service refused or never answered; `status` 0 when there was no response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"load balancer service: {status or 'no response'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.status in {0, 429} or self.status >= 500


@dataclass(frozen=True)
class Backoff:
    """Waits between attempts: `start`, doubled each time, at most `cap`; `attempts` in all."""

    attempts: int = 5
    start: float = 0.2
    cap: float = 5.0

    def delay(self, failures: int) -> float:
        return float(min(self.start * 2 ** (failures - 1), self.cap))


class LoadBalancerClient:
    """One httpx connection pool to the service; `close()` it when done."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 10.0,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.backoff = backoff
        self._http = httpx.AsyncClient(base_url=self.endpoint, timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def create(self, name: str, client_token: str, labels: Mapping[str, str]) -> LoadBalancer:
        """The load balancer created with `client_token`, created now if there is none yet."""
        document = await self._call(
            "POST",
            PREFIX,
            json={"name": name, "labels": dict(labels)},
            headers={CLIENT_TOKEN_HEADER: client_token},
        )
        if document is None:
            raise LoadBalancerError(404, "NotFound", f"no load balancer service at {self.endpoint}")
        return LoadBalancer.from_wire(document)

    async def get(self, load_balancer_id: str) -> LoadBalancer | None:
        document = await self._call("GET", f"{PREFIX}/{load_balancer_id}")
        return None if document is None else LoadBalancer.from_wire(document)

    async def find(self, client_token: str) -> LoadBalancer | None:
        """The load balancer created with `client_token`, without creating one."""
        document = await self._call("GET", PREFIX, params={"clientToken": client_token})
        items = (document or {}).get("items", [])
        return LoadBalancer.from_wire(items[0]) if items else None

    async def bind(
        self, load_balancer_id: str, listeners: Sequence[Listener], backends: Sequence[str]
    ) -> LoadBalancer:
        """Make it forward exactly `listeners` to exactly `backends` (a whole replacement)."""
        body = {
            "listeners": [listener.wire() for listener in sorted(listeners)],
            "backends": [{"address": address} for address in sorted(backends)],
        }
        document = await self._call("PUT", f"{PREFIX}/{load_balancer_id}/backends", json=body)
        if document is None:
            raise LoadBalancerError(404, "NotFound", f"load balancer {load_balancer_id} is gone")
        return LoadBalancer.from_wire(document)

    async def delete(self, load_balancer_id: str) -> None:
        """Release it; one already gone counts as released."""
        await self._call("DELETE", f"{PREFIX}/{load_balancer_id}")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """The JSON answer (None for 404 and empty answers), after retrying what may pass."""
        failures = 0
        while True:
            try:
                return await self._once(method, path, json=json, params=params, headers=headers)
            except LoadBalancerError as error:
                failures += 1
                if not error.retryable or failures >= self.backoff.attempts:
                    raise
                delay = self.backoff.delay(failures)
                log.info("%s %s failed (%s); attempt %d in %.1fs", method, path, error, failures + 1, delay)
                await asyncio.sleep(delay)

    async def _once(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any] | None:
        try:
            response = await self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.TransportError as error:  # timeouts, refused and dropped connections
            raise LoadBalancerError(0, type(error).__name__, str(error) or repr(error)) from error
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _error(response)
        if not response.content:
            return None
        try:
            document = response.json()
        except ValueError as error:
            raise LoadBalancerError(response.status_code, "BadResponse", response.text[:200]) from error
        if not isinstance(document, dict):
            raise LoadBalancerError(response.status_code, "BadResponse", "not a JSON object")
        return document


def _error(response: httpx.Response) -> LoadBalancerError:
    try:
        detail = response.json()["error"]
        return LoadBalancerError(response.status_code, str(detail["code"]), str(detail["message"]))
    except (ValueError, KeyError, TypeError):
        return LoadBalancerError(response.status_code, response.reason_phrase, response.text[:200])
