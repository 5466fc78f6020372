"""The rate budget against a server that counts calls by arrival, as Finnhub and Yahoo do.

Calls the budget lets go can wait in the client's connection pool and answers can be slow, so a
call reaches the server later than it left the budget. The server here answers after a random
delay, the client's pool holds three connections, and the windows are scaled down (8 calls in
0.5 s, 3 in 0.05 s) so the test takes a second or two; the count is real time on both sides.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from fin_agent.adapters.vendor_http.json_client import HttpPolicy, JsonHttpClient
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow

WINDOWS = (RateWindow(max_calls=8, per_secs=0.5), RateWindow(max_calls=3, per_secs=0.05))
CALLS = 40


@dataclass
class ArrivalCounter:
    """A JSON endpoint that notes when each request arrives, then answers 0-80 ms later."""

    rng: random.Random = field(default_factory=lambda: random.Random(11))
    arrivals: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        await asyncio.sleep(self.rng.uniform(0.0, 0.08))
        return web.json_response({"ok": True})


def most_in_any_window(stamps: list[float], per_secs: float) -> int:
    """The most arrivals in any half-open stretch [t, t + per_secs)."""
    return max(sum(1 for s in stamps if t <= s < t + per_secs) for t in stamps)


@pytest_asyncio.fixture
async def counter() -> AsyncIterator[tuple[ArrivalCounter, str]]:
    local = ArrivalCounter()
    app = web.Application()
    app.router.add_get("/api/quote", local.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield local, f"http://127.0.0.1:{runner.addresses[0][1]}/api"
    await runner.cleanup()


@pytest.mark.asyncio
async def test_no_window_overflows_at_the_server_when_calls_queue_in_the_pool(
    counter: tuple[ArrivalCounter, str],
) -> None:
    server, base_url = counter
    budget = RateBudget(WINDOWS, name="scaled", margin_secs=0.0)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=3))
    client = JsonHttpClient(
        service="scaled",
        base_url=base_url,
        budget=budget,
        auth_hint="no key",
        policy=HttpPolicy(timeout_secs=5.0),
        session=session,
    )
    try:
        await asyncio.gather(*(client.get("/quote", params={"i": str(i)}) for i in range(CALLS)))
    finally:
        await client.close()
        await session.close()

    assert len(server.arrivals) == CALLS
    assert most_in_any_window(server.arrivals, 0.5) <= 8
    assert most_in_any_window(server.arrivals, 0.05) <= 3
    assert budget.stats.acquired == CALLS
