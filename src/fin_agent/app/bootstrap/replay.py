"""Runs on recorded data: a backtest over bar files (`fin-agent backtest`) and the audit of a
stored day re-run from its recorded inputs (`fin-agent replay`). Both use a memory bus."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from fin_agent.adapters.files.bar_files import BarFileSpec, BarKind, BarStamp, describe_dropped
from fin_agent.adapters.files.replay import ReplayLoad, load_replay
from fin_agent.adapters.memory import FixedCalendar, InMemoryMarketData, InMemoryNews
from fin_agent.app.bootstrap.core import build
from fin_agent.app.bootstrap.store import StoreKind
from fin_agent.app.config.settings import Settings
from fin_agent.app.container import Container
from fin_agent.domain.gap_scanner import UniverseSnapshot
from fin_agent.domain.values import Bar
from fin_agent.ports.market_data import RecordedMarketData

REGULAR_CLOSE = time(16, 0)
BacktestStore = Literal["memory", "duckdb"]
"""Where a backtest keeps its events: in process (fastest), or a scratch DuckDB file (bounded
memory for long universe runs: DuckDB keeps at most `store.duckdb_memory_limit` cached)."""
DAILY_ONLY_WARNING = (
    "only daily bars given: the scan runs on them, but no plan can be made or traded without "
    "intraday bars (the opening range, entries and exits need them): add 1- or 5-minute bar files"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedBars:
    """Bar files read for a backtest: the market they replay, and what to warn the user of."""

    market: RecordedMarketData
    warnings: tuple[str, ...]


def load_bar_files(
    paths: Sequence[Path], *, timezone: str, bar_stamp: str, factors_dir: Path | None
) -> RecordedBars:
    """Read daily and/or intraday bar files (naive stamps in `timezone`, marking a bar's
    `bar_stamp`: start, end or auto; split factors from `factors_dir`); `DataError` if unusable."""
    spec = BarFileSpec(timezone=timezone, bar_stamp=BarStamp(bar_stamp), factors_dir=factors_dir)
    loaded = load_replay(paths, spec)
    return RecordedBars(market=loaded.market_data, warnings=load_warnings(loaded, spec))


def load_warnings(loaded: ReplayLoad, spec: BarFileSpec) -> tuple[str, ...]:
    """What to tell the user about bar files read: rows dropped, symbols without split factors,
    no intraday bars at all."""
    warnings: list[str] = []
    if loaded.dropped:
        warnings.append(describe_dropped(loaded.dropped))
    if loaded.unadjusted_symbols and spec.factors_dir is not None:
        names = ", ".join(loaded.unadjusted_symbols)
        warnings.append(f"no split factors for {names}: their prices are as traded")
    if all(f.kind is BarKind.DAILY for f in loaded.files):
        warnings.append(DAILY_ONLY_WARNING)
    return tuple(warnings)


async def build_replay(
    settings: Settings, market: RecordedMarketData, *, store: StoreKind = "memory"
) -> Container:
    """A run on recorded bar files (a backtest); recorded files carry no news.

    Sessions are the weekdays of the data; a day whose data closes early is an early close.
    """
    zone = ZoneInfo(settings.timezone)
    early = [
        day
        for day in market.sessions()
        if (close := market.session_close(day)) is not None
        and close.astimezone(zone).time() < REGULAR_CLOSE
    ]
    calendar = FixedCalendar(early_closes=early)
    return await build(
        settings,
        market=market,
        news=InMemoryNews(),
        calendar=calendar,
        bus="memory",
        store=store,
        keep_published=False,  # the store has every event; a long backtest must not hold them
    )


@contextmanager
def backtest_settings(settings: Settings, store: BacktestStore) -> Iterator[Settings]:
    """The settings a backtest on `store` runs with: as they are for the memory store; for
    DuckDB, data_dir a scratch folder deleted at the end, so that the run's file holds this run
    alone and no configured database is touched."""
    if store == "memory":
        yield settings
        return
    with tempfile.TemporaryDirectory(prefix="fin-agent-backtest-") as scratch:
        yield settings.model_copy(update={"data_dir": Path(scratch)})


async def build_audit(
    settings: Settings, day: date, snapshot: UniverseSnapshot, bars: Iterable[Bar]
) -> Container:
    """A run of a stored `day` again from its inputs on record: the scan's snapshot (daily bars,
    pre-market figures, headlines) and the session's minutes of bars; memory bus and store."""
    market = InMemoryMarketData()
    news = InMemoryNews()
    for item in snapshot.symbols:
        market.add_daily(item.daily_bars)
        if item.premarket is not None:
            market.premarkets[(item.symbol, day)] = item.premarket
        news.items.extend(item.headlines)
    market.add_intraday(bars)
    return await build(
        settings, market=market, news=news, calendar=FixedCalendar(), bus="memory", store="memory"
    )
