"""The dashboard's HTTP server (aiohttp, as the controller's health, metrics and webhook servers).

Routes:
- `GET /`: the list of Rollouts and Components; `GET /rollouts/NS/NAME`: one Rollout's page. Each
  is a small HTML page that embeds the request token and opens its stream;
- `GET /stream` (the list) and `GET /stream/NS/NAME` (a page): server-sent events: first the whole
  `snapshot`, then a `change` per burst of changes (the list: the rows changed and the keys gone; a
  page: the page again), and a comment every `KEEPALIVE` seconds so that proxies keep it open;
- `POST /act/NS/NAME` with `{"action": "promote"|"promote-full"|"abort"|"retry"|"pause"}`: the
  `act` callback (the plugin's annotations) with the user's credentials. A refusal of the apiserver
  comes back with its status and message, for the page to show. Without `act` (`--read-only`, the
  controller) the page has no buttons and every POST is refused.

Every request passes `delivery.dashboard.guard` first (Host; and for a POST: Origin, token, JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web

from delivery.dashboard.guard import TOKEN_HEADER, local_hosts, refusal
from delivery.dashboard.store import Store, Subscriber
from delivery.kube.api import KubeError

Act = Callable[[str, str, str, bool], Awaitable[None]]
"""Ask the controller to act on a Rollout: (namespace, name, action, full) -> the annotation written."""
ACTIONS = {"promote": ("promote", False), "promote-full": ("promote", True)} | {
    name: (name, False) for name in ("abort", "retry", "pause")
}
KEEPALIVE = 15.0
COALESCE = 0.1  # seconds a stream waits after a change for the rest of a burst
STATIC = resources.files("delivery.dashboard") / "static"
STATIC_FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


@dataclass
class Dashboard:
    """A running dashboard: its store, its runner and where it listens."""

    store: Store
    runner: web.AppRunner
    port: int
    token: str

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.store.stop()


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (STATIC / name).read_text()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def application(
    store: Store, *, act: Act | None, hosts: Collection[str] | None, token: str, scope: str
) -> web.Application:
    """The routes over `store`; `scope` is shown in the header (a namespace or "all namespaces")."""
    template = _environment().get_template("page.html")

    @web.middleware
    async def guarded(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        refused = refusal(
            request.method,
            host=request.headers.get("Host"),
            origin=request.headers.get("Origin"),
            content_type=request.headers.get("Content-Type"),
            token=request.headers.get(TOKEN_HEADER),
            secret=token,
            hosts=hosts,
        )
        if refused is not None:
            return web.json_response({"error": refused}, status=403)
        return await handler(request)

    async def headers(_: web.Request, response: web.StreamResponse) -> None:
        """No script but ours, no framing by another site, nothing sniffed."""
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"

    def html(rollout: tuple[str, str] | None) -> web.Response:
        body = template.render(
            token=token,
            read_only=act is None,
            scope=scope,
            namespace=rollout[0] if rollout else "",
            name=rollout[1] if rollout else "",
        )
        return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def index(_: web.Request) -> web.Response:
        return html(None)

    async def rollout_page(request: web.Request) -> web.Response:
        return html((request.match_info["namespace"], request.match_info["name"]))

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["file"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        return web.Response(text=(STATIC / name).read_text(), content_type=STATIC_FILES[name])

    async def stream_list(request: web.Request) -> web.StreamResponse:
        return await _stream(request, store, None)

    async def stream_page(request: web.Request) -> web.StreamResponse:
        return await _stream(request, store, (request.match_info["namespace"], request.match_info["name"]))

    async def act_on(request: web.Request) -> web.Response:
        if act is None:
            return web.json_response({"error": "the dashboard is read-only"}, status=403)
        try:
            asked = await request.json()
            action, full = ACTIONS[asked["action"]]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": f"actions: {', '.join(ACTIONS)}"}, status=400)
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if (namespace, name) not in store.rollouts:  # only what the page shows: not another namespace's
            return web.json_response({"error": f"no rollout {namespace}/{name} here"}, status=404)
        try:
            await act(namespace, name, action, full)
        except KubeError as error:
            return web.json_response({"error": error.message, "reason": error.reason}, status=error.status)
        return web.json_response({"done": f"rollout {namespace}/{name}: {asked['action']} requested"})

    app = web.Application(middlewares=[guarded])
    app.on_response_prepare.append(headers)
    app.router.add_get("/", index)
    app.router.add_get("/rollouts/{namespace}/{name}", rollout_page)
    app.router.add_get("/static/{file}", static)
    app.router.add_get("/stream", stream_list)
    app.router.add_get("/stream/{namespace}/{name}", stream_page)
    app.router.add_post("/act/{namespace}/{name}", act_on)
    return app


def _message(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _content(store: Store, subscriber: Subscriber, changed: set[tuple[str, tuple[str, str]]] | None) -> Any:
    if subscriber.rollout is None:
        return store.listing(changed)
    return store.page(subscriber.rollout)


async def _stream(request: web.Request, store: Store, rollout: tuple[str, str] | None) -> web.StreamResponse:
    """One page's server-sent events, from the store's one watch per kind."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await store.synced()
    subscriber = store.subscribe(rollout)
    try:
        await response.write(_message("snapshot", _content(store, subscriber, None)))
        subscriber.take()  # what changed before the snapshot is in it
        while True:
            try:
                await asyncio.wait_for(subscriber.wake.wait(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await asyncio.sleep(COALESCE)
            changed = subscriber.take()
            await response.write(_message("change", _content(store, subscriber, changed)))
    except ConnectionResetError:
        pass  # the tab was closed
    finally:
        store.unsubscribe(subscriber)
    return response


async def serve(
    store: Store,
    address: str,
    port: int,
    *,
    act: Act | None,
    local: bool,
    scope: str,
) -> Dashboard:
    """Start the store's informers and the server; `port` 0 takes a free one (tests). `local`: only
    the Host headers of this address and localhost are answered (see `guard`); else any (the
    controller's read-only page behind a Service)."""
    token = secrets.token_urlsafe(32)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    bound = int(sock.getsockname()[1])
    await store.start()
    hosts = local_hosts(address, bound) if local else None
    app = application(store, act=act, hosts=hosts, token=token, scope=scope)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return Dashboard(store, runner, bound, token)


async def serve_forever(dashboard: Dashboard) -> None:
    """Until cancelled (Ctrl-C), then stop."""
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await dashboard.stop()
