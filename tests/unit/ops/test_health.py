"""/healthz, /readyz and /metrics answer on a loopback port."""

from __future__ import annotations

import httpx

from delivery.ops import health


async def test_ready_and_healthy_only_when_their_checks_say_so() -> None:
    why: list[str | None] = ["caches not synced"]
    broken: list[str | None] = [None]
    served = await health.serve("127.0.0.1", 0, liveness=lambda: broken[0], readiness=lambda: why[0])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            broken[0] = "leader election stopped"
            assert (await client.get("/healthz")).status_code == 503
            not_ready = await client.get("/readyz")
            assert (not_ready.status_code, not_ready.text) == (503, "caches not synced\n")
            why[0] = None
            assert (await client.get("/readyz")).status_code == 200
            scraped = await client.get("/metrics")
            assert "# TYPE delivery_reconciles_total counter" in scraped.text
    finally:
        await served.stop()
