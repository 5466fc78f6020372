"""A backtest on a Parquet file of one row group per day, read a day at a time, takes the trades
and gives the warnings of the same bars read whole and of the same bars as CSV."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from fin_agent.adapters.files.bar_files import BarFileSpec, BarStamp
from fin_agent.adapters.files.replay import ReplayLoad, load_replay
from fin_agent.adapters.memory import FixedCalendar
from fin_agent.adapters.simulator.market import SimulatedMarket
from fin_agent.app.bootstrap import build_replay, running
from fin_agent.app.bootstrap.replay import load_warnings
from fin_agent.app.config.settings import load_settings
from fin_agent.app.runner import run_sessions

REPO = Path(__file__).resolve().parents[2]
FIRST = date(2025, 3, 3)
SPEC = BarFileSpec(timezone="UTC", bar_stamp=BarStamp.START)
FIELDS = ("symbol", "datetime", "open", "high", "low", "close", "volume")


async def write_market(folder: Path, symbols: int, days: int) -> tuple[Path, list[pa.Table]]:
    """The simulator's daily bars (with 45 sessions of history) to a Parquet file, and each
    day's 1-minute bars of its gappers (pre-market and session) as one table per day, with a
    row of a bad symbol on the first day."""
    market = SimulatedMarket(seed=3, calendar=FixedCalendar(), universe_size=symbols)
    calendar = FixedCalendar()
    sessions = [s.day for s in calendar.sessions(FIRST, FIRST + timedelta(days=3 * days))][:days]
    rows: list[list[Any]] = []
    for name in await market.symbols():
        for b in await market.daily_bars(name, sessions[-1] + timedelta(days=1), 45 + days):
            rows.append([name, b.session, *map(float, (b.open, b.high, b.low, b.close)), b.volume])
    daily = folder / "daily.parquet"
    pq.write_table(pa.table(dict(zip(FIELDS, map(list, zip(*rows, strict=True)), strict=True))),
                   daily)  # fmt: skip
    tables: list[pa.Table] = []
    for day in sessions:
        gappers = market.gappers(day)
        bars = [b for name in gappers for b in market.premarket_bars(name, day)]
        bars += await market.session_bars(day, gappers)
        minutes = [[b.symbol, b.start, *map(float, (b.open, b.high, b.low, b.close)), b.volume]
                   for b in bars]  # fmt: skip
        if day == sessions[0]:
            minutes.append(["BAD/SYM", bars[0].start, 1.0, 1.0, 1.0, 1.0, 1])
        tables.append(pa.table(dict(zip(FIELDS, map(list, zip(*minutes, strict=True)),
                                        strict=True))))  # fmt: skip
    return daily, tables


def backtest(loaded: ReplayLoad) -> list[Any]:
    """The trades of every session of `loaded`, and the market's days in memory after."""
    settings = load_settings(REPO / "config.yaml")
    market = loaded.market_data

    async def go() -> list[Any]:
        container = await build_replay(settings, market)
        sessions = [s for d in market.sessions() if (s := container.calendar.session(d))]
        async with running(container):
            reports = await run_sessions(container, sessions, settings.strategy_equity())
        return [
            (r.day, t.symbol, t.qty, t.entry_price, t.exit_price, t.exit_reason)
            for r in reports
            for t in r.performance.trades
        ]

    return asyncio.run(go())


def test_backtest_read_by_day_takes_the_trades_of_the_same_bars_whole_and_as_csv(
    tmp_path: Path,
) -> None:
    daily, days = asyncio.run(write_market(tmp_path, symbols=120, days=6))
    by_day = tmp_path / "minutes.parquet"
    with pq.ParquetWriter(by_day, days[0].schema) as writer:
        for day in days:
            writer.write_table(day)
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.concat_tables(days), whole)
    as_csv = tmp_path / "minutes.csv"
    pcsv.write_csv(pa.concat_tables(days), as_csv)
    runs: list[tuple[Sequence[Path], dict[str, int]]] = [
        ([daily, by_day], {"resident_rows": 0, "chunk_rows": 1}),
        ([daily, whole], {}),
        ([daily, as_csv], {}),
    ]

    loads = [load_replay(paths, SPEC, **bounds) for paths, bounds in runs]
    trades = [backtest(loaded) for loaded in loads]
    warnings = [[w.replace(p[1].name, "MINUTES") for w in load_warnings(loaded, SPEC)]
                for loaded, (p, _) in zip(loads, runs, strict=True)]  # fmt: skip

    assert trades[0], "the simulated days take trades"
    assert trades[0] == trades[1] == trades[2]
    assert warnings[0] == warnings[1] == warnings[2]
    assert "BAD/SYM" in warnings[0][0]
    sessions = loads[0].market_data.sessions()
    assert loads[0].market_data.loaded_days == (sessions[-1],)
