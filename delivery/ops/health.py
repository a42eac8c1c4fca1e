"""`/metrics`, `/healthz` and `/readyz` on one port, served on the controller's event loop.

Served by aiohttp (already there for kopf) on the loop itself rather than prometheus-client's
thread: a scrape then reads the cache between two reconciles, never during one, and `/healthz`
answering proves the loop is not stuck.

Ready means the caches are synced (every watched kind has delivered its initial listing) and,
with leader election on, the replica takes part in it: a standby is ready (it is warm and would
take over); it does not have to be the leader.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

Readiness = Callable[[], str | None]  # None: ready; otherwise why not


@dataclass
class Served:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def serve(address: str, port: int, readiness: Readiness) -> Served:
    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        why = readiness()
        if why is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=why + "\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    await site.start()
    server = site._server  # aiohttp gives no public accessor for the bound port
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    log.info("metrics and health at http://%s:%d/metrics", address, bound)
    return Served(runner, bound)
