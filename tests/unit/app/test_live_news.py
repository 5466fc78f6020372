"""`LiveNews`: the stream runs from `news.start` until the close, and publishes once per headline
across a restart (a second day's run reads the ids back from the store)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.live.news import LiveNews
from fin_agent.domain.events import NewsPublished
from fin_agent.domain.news import NewsItem
from fin_agent.domain.values import Symbol, symbol
from fin_agent.ports.news import NewsSink, StopSignal

REPO = Path(__file__).resolve().parents[3]
NY = ZoneInfo("America/New_York")
DAY = date(2025, 3, 4)


def et(hh: int, mm: int) -> datetime:
    return datetime.combine(DAY, time(hh, mm), NY).astimezone(UTC)


class ScriptedStream:
    """Hands the same two batches every run (a reconnect repeats what the server sent)."""

    def __init__(self) -> None:
        self.watched: list[Collection[Symbol]] = []

    def set_watchlist(self, symbols: Collection[Symbol]) -> None:
        self.watched.append(symbols)

    async def run(self, sink: NewsSink, stop: StopSignal) -> None:
        first = NewsItem(
            news_id="finnhub:1",
            symbols=(symbol("AAA"),),
            title="AAA wins approval",
            source="Wire",
            published_at=et(4, 30),
        )
        second = NewsItem(
            news_id="finnhub:2",
            symbols=(symbol("BBB"),),
            title="BBB beats",
            source="Wire",
            published_at=et(6, 0),
        )
        await sink([first])
        await sink([first, second])
        await stop.wait()


@pytest.mark.asyncio
async def test_live_news_runs_from_the_start_to_the_close_and_publishes_once_across_a_restart(
    tmp_path: Path,
) -> None:
    settings = load_settings(REPO / "config.yaml", environ={})
    container = await build_simulation(settings, bus="memory", store="memory")
    assert container.sim_clock is not None
    stream = ScriptedStream()
    async with running(container):
        news = LiveNews(container, stream)
        assert news.window(et(3, 59)) is None
        found = news.window(et(4, 0))
        assert found is not None
        session, start = found
        assert (session.day, start) == (DAY, et(4, 0))
        assert news.window(session.close) is None
        container.sim_clock.set(session.close)  # the day's watcher ends the stream at once
        await news.run_day(session, asyncio.Event())
        await news.run_day(session, asyncio.Event())  # a restart of the same day
        await container.bus.drain()
        stored = await container.store.events(day=DAY, types=[NewsPublished.TYPE])
    ids = sorted(e.item.news_id for e in stored if isinstance(e, NewsPublished))
    assert ids == ["finnhub:1", "finnhub:2"]
    assert news.publisher is not None
    assert (news.publisher.published, news.publisher.duplicates) == (0, 3)
    assert stream.watched
    assert all(isinstance(s, Sequence) for s in stream.watched)
