"""Benchmark of the gap scanner against a vectorised pandas pass of the same filters, side by side.

One day's snapshot of the synthetic universe (bench/backtest.py writes it; 7,000 symbols by
default) is scanned by the project's `GapScanner` (the snapshot as the collector hands it over:
daily bars and pre-market figures per symbol) and by a pandas/numpy pass over the same values as
frames (previous close, gap band, split ratios, price band, pre-market volume, history, Wilder ATR
over the last `scan.atr_lookback_bars`, ADV, rank). Both must pick the same candidates.

Each result is a JSON line on stdout: `scan_symbols_per_s` with the pandas pass as its reference.
Run: `.venv/bin/python bench/scan_pandas.py [--symbols N] [--seconds S] > results.jsonl`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # pandas-stubs is not installed

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from _common import emit, note, quiet_logs  # noqa: E402
from backtest import universe  # noqa: E402

from fin_agent.domain.gap_scanner import (  # noqa: E402
    SPLIT_RATIOS,
    SPLIT_TOLERANCE,
    GapScanner,
    UniverseSnapshot,
)
from fin_agent.domain.rules import ScanRules  # noqa: E402


def frames(snapshot: UniverseSnapshot) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The snapshot's daily bars (one row each) and pre-market figures (one row per symbol)."""
    rows = [
        (i, b.high, b.low, b.close, b.volume)
        for i, item in enumerate(snapshot.symbols)
        for b in item.daily_bars
    ]
    daily = pd.DataFrame(rows, columns=["sym", "high", "low", "close", "volume"])
    for name in ("high", "low", "close"):
        daily[name] = daily[name].astype(float)
    daily["volume"] = daily["volume"].astype(float)
    pm = pd.DataFrame(
        {
            "symbol": [item.symbol for item in snapshot.symbols],
            "last": [
                np.nan if item.premarket is None else float(item.premarket.last)
                for item in snapshot.symbols
            ],
            "pm_volume": [
                np.nan
                if item.premarket is None or item.premarket.volume is None
                else float(item.premarket.volume)
                for item in snapshot.symbols
            ],
        }
    )
    return daily, pm


def pandas_scan(daily: pd.DataFrame, pm: pd.DataFrame, rules: ScanRules) -> list[str]:
    """The scan's filters as one vectorised pass; the candidates' symbols in rank order."""
    count = len(pm)
    grouped = daily.groupby("sym", sort=True)
    history = grouped.size().reindex(range(count), fill_value=0).to_numpy()
    prev = grouped["close"].last().reindex(range(count)).to_numpy()
    adv = (
        (daily.groupby("sym").tail(rules.adv_period).groupby("sym")["volume"].mean())
        .reindex(range(count))
        .to_numpy()
    )
    last, volume = pm["last"].to_numpy(), pm["pm_volume"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = 100 * (last - prev) / prev
        ratio = last / prev
        split = np.zeros(count, dtype=bool)
        for fraction in SPLIT_RATIOS:
            expected = fraction.numerator / fraction.denominator
            split |= np.abs(ratio - expected) <= expected * float(SPLIT_TOLERANCE)
        heavy = volume * 100 >= adv * float(rules.split_guard_heavy_volume_pct)
        atr = _wilder_atr(daily, count, rules)
        ok = np.isfinite(prev) & np.isfinite(last)
        ok &= ~(split & ~heavy) if rules.split_guard else True
        ok &= (gap > 0) & (gap >= float(rules.gap_min_pct)) & (gap <= float(rules.gap_max_pct))
        ok &= (last >= float(rules.price_min)) & (last <= float(rules.price_max))
        ok &= np.isnan(volume) | (volume >= rules.pm_volume_min)
        ok &= (history >= rules.min_history_bars) & np.isfinite(atr)
        ok &= adv >= rules.adv_min
    passed = pd.DataFrame({"symbol": pm["symbol"], "gap": gap, "volume": np.nan_to_num(volume)})[ok]
    ranked = passed.sort_values(["gap", "volume", "symbol"], ascending=[False, False, True])
    return list(ranked["symbol"].head(rules.top_n))


def _wilder_atr(daily: pd.DataFrame, count: int, rules: ScanRules) -> Any:
    """Wilder's ATR over each symbol's last `atr_lookback_bars` bars, NaN when too short."""
    lookback, period = rules.atr_lookback_bars, rules.atr_period
    recent = daily.groupby("sym").tail(lookback)
    position = recent.groupby("sym").cumcount().to_numpy()
    grid = np.full((count, lookback, 3), np.nan)
    grid[recent["sym"].to_numpy(), position] = recent[["high", "low", "close"]].to_numpy()
    high, low = grid[:, 1:, 0], grid[:, 1:, 1]
    prev_close = grid[:, :-1, 2]
    ranges = np.fmax(high - low, np.fmax(np.abs(high - prev_close), np.abs(low - prev_close)))
    ranges[np.isnan(high) | np.isnan(prev_close)] = np.nan
    atr = ranges[:, :period].mean(axis=1)  # NaN when fewer than `period` ranges
    for column in range(period, lookback - 1):
        step = ranges[:, column]
        present = ~np.isnan(step)
        atr = np.where(present, (atr * (period - 1) + step) / period, atr)
    return atr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=7000, help="synthetic universe size")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per side")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "fin_agent_bench_backtest"
    )
    args = parser.parse_args()
    quiet_logs()
    from fin_agent.adapters.memory import InMemoryNews
    from fin_agent.app.bootstrap import load_bar_files
    from fin_agent.app.config.settings import load_settings
    from fin_agent.app.day.collect import UniverseCollector

    data = universe(args.symbols, 3, 7, args.cache)
    rules = load_settings(REPO / "config.yaml").strategy().scan
    market = load_bar_files(
        [data.daily, data.minutes], timezone=data.tz, bar_stamp=data.stamp, factors_dir=None
    ).market
    day = data.last
    scan_at = datetime.combine(day, clock(14, 0), UTC)

    async def collect() -> UniverseSnapshot:
        collector = UniverseCollector(market=market, news=InMemoryNews(), rules=rules)
        found = await collector.collect(day, scan_at, await market.symbols())
        return found.snapshot

    snapshot = asyncio.run(collect())
    daily, pm = frames(snapshot)
    scanner = GapScanner(rules)
    project, seconds_p = _timed(lambda: scanner.scan(snapshot), args.seconds / 2)
    reference, seconds_r = _timed(lambda: pandas_scan(daily, pm, rules), args.seconds / 2)
    mine = [c.symbol for c in project.candidates]
    equal = mine == reference
    symbols = len(snapshot.symbols)
    note(f"scan of {symbols} symbols: project {seconds_p * 1e3:.1f} ms, pandas "
         f"{seconds_r * 1e3:.1f} ms; candidates equal: {equal} ({mine} / {reference})")  # fmt: skip
    emit(
        "scan",
        "scan_symbols_per_s",
        symbols / seconds_p,
        "symbols/s",
        reference=symbols / seconds_r,
        reference_name="vectorised pandas pass of the same filters",
        symbols=symbols,
        day=day.isoformat(),
        project_ms=seconds_p * 1e3,
        pandas_ms=seconds_r * 1e3,
        ratio=seconds_r / seconds_p,
        candidates_equal=equal,
    )
    return 0 if equal else 1


def _timed(run: Any, budget: float) -> tuple[Any, float]:
    """The result of `run` and its best time over repeats within `budget` seconds."""
    best, result, spent = float("inf"), None, 0.0
    while spent < budget or result is None:
        started = time.perf_counter()
        result = run()
        took = time.perf_counter() - started
        best, spent = min(best, took), spent + took
    return result, best


if __name__ == "__main__":
    sys.exit(main())
