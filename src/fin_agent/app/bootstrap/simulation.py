"""A run on the seeded simulator: the embedded default (no network, no accounts)."""

from __future__ import annotations

from fin_agent.adapters.memory import FixedCalendar
from fin_agent.adapters.simulator.market import SimulatedMarket
from fin_agent.app.bootstrap.bus import BusKind
from fin_agent.app.bootstrap.core import build
from fin_agent.app.bootstrap.store import StoreKind
from fin_agent.app.config.settings import Settings
from fin_agent.app.container import Container


async def build_simulation(
    settings: Settings,
    *,
    seed: int | None = None,
    bus: BusKind | None = None,
    store: StoreKind | None = None,
    stream_prefix: str | None = None,
    delete_streams: bool = False,
) -> Container:
    """A run on the seeded simulator (the embedded default: no network, no accounts).

    `delete_streams`: a Redis bus deletes its streams at the end (a throwaway demo's prefix).
    """
    calendar = FixedCalendar()
    market = SimulatedMarket(
        seed=settings.simulator.seed if seed is None else seed,
        calendar=calendar,
        universe_size=settings.simulator.universe_size,
    )
    return await build(
        settings,
        market=market,
        news=market,
        recorded_news=market if settings.simulator.news_stream else None,
        calendar=calendar,
        bus=bus,
        store=store,
        stream_prefix=stream_prefix,
        delete_streams=delete_streams,
    )
