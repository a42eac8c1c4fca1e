"""/healthz, /readyz and /metrics answer on a loopback port."""

from __future__ import annotations

import httpx

from delivery.ops import health


async def test_ready_only_when_the_readiness_check_says_so() -> None:
    why: list[str | None] = ["caches not synced"]
    served = await health.serve("127.0.0.1", 0, lambda: why[0])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            not_ready = await client.get("/readyz")
            assert (not_ready.status_code, not_ready.text) == (503, "caches not synced\n")
            why[0] = None
            assert (await client.get("/readyz")).status_code == 200
            scraped = await client.get("/metrics")
            assert "# TYPE delivery_reconciles_total counter" in scraped.text
    finally:
        await served.stop()
