"""`/metrics`, `/healthz` and `/readyz` on one port, served on the controller's event loop.

Served by aiohttp (already there for kopf) on the loop itself rather than prometheus-client's
thread: a scrape then reads the cache between two reconciles, never during one, and `/healthz`
answering proves the loop is not stuck. Healthy also means the part that decides when to write
(cache sync, then leader election) has not died: a replica that can never lead again should be
restarted, not kept as a standby that would never take over.

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

Check = Callable[[], str | None]  # None: fine; otherwise what is wrong


@dataclass
class Served:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def serve(address: str, port: int, *, liveness: Check, readiness: Check) -> Served:
    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    def answer(check: Check) -> web.Response:
        wrong = check()
        if wrong is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=wrong + "\n")

    async def healthz(_: web.Request) -> web.Response:
        return answer(liveness)

    async def readyz(_: web.Request) -> web.Response:
        return answer(readiness)

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
