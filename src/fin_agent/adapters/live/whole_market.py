"""The whole market before the open: a listed universe, its daily history in bulk, its snapshots.

- `DailyHistory`: daily bars of thousands of symbols through the `DailyBarCache`, the missing
  sessions fetched in multi-symbol calls (`BatchDailyBarSource`), kept in memory for the day's
  scan. As `LiveMarket` does, a session missing among the latest `refetch_sessions` is never
  marked cached (it is asked for again), while the bars past it still serve the day's scan.
  A symbol with a split (`SplitSource`: Alpaca's corporate actions, one round for the whole
  market per load) ex-dated after its cached bars end and on or before the scan day has its whole
  cached window fetched again, split-adjusted (`daily_history_split_refetch`): the cached bars
  are on the old scale, and the previous close, ATR and ADV must not mix scales.
- `ListedUniverse` (the `UniverseSource` port): the broker's listed symbols (`AssetSource`)
  whose cached history passes the `UniverseFilter` (price band, average volume).
- `SnapshotPremarkets`: every scanned symbol's pre-market from one round of multi-symbol
  snapshots (`SnapshotSource`) per scan, so the volume rule applies (the snapshot has it).
"""

from __future__ import annotations

import asyncio
import time as monotonic
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from fin_agent.domain.splits import Split
from fin_agent.domain.universe_filter import UniverseFilter
from fin_agent.domain.values import DailyBar, Premarket, Symbol
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.daily_bar_cache import DailyBarCache, DailyBarPutRequest

log = structlog.get_logger(__name__)
ONE_DAY = timedelta(days=1)


class AssetSource(Protocol):
    """The broker's list of active, tradable US equities (`AlpacaMarketData`)."""

    async def assets(self) -> Sequence[Symbol]:
        """Every listed symbol, sorted."""
        ...


class BatchDailyBarSource(Protocol):
    """Daily bars of many symbols per call (`AlpacaMarketData`)."""

    async def daily_bars_many(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> Mapping[Symbol, Sequence[DailyBar]]:
        """The bars of sessions `start`..`end` of each symbol, oldest first."""
        ...


class SplitSource(Protocol):
    """The splits of the whole market (`AlpacaMarketData`)."""

    async def splits(self, start: date, end: date) -> Sequence[Split]:
        """Every symbol's splits ex-dated `start`..`end`."""
        ...


class PremarketSnapshot(Protocol):
    """One symbol's snapshot, as far as the scan needs it."""

    def premarket(self, day: date, opens: datetime) -> Premarket | None:
        """The pre-market of `day` since `opens`, None when nothing traded."""
        ...


class SnapshotSource(Protocol):
    """Snapshots of many symbols per call (`AlpacaMarketData`)."""

    async def snapshots(self, symbols: Sequence[Symbol]) -> Mapping[Symbol, PremarketSnapshot]:
        """The snapshots of `symbols` (a symbol that never traded is missing)."""
        ...


def history_window(calendar: Calendar, before: date, count: int) -> tuple[date, date]:
    """The dates of the last `count` sessions before `before`, as `LiveMarket.daily_bars` asks."""
    end = before - ONE_DAY
    span = end - timedelta(days=count * 2 + 14)
    sessions = calendar.sessions(span, end)
    return (sessions[-count].day if len(sessions) >= count else span), end


class DailyHistory:
    """Many symbols' daily bars through the cache, fetched in bulk (see the module)."""

    def __init__(
        self,
        cache: DailyBarCache,
        source: BatchDailyBarSource,
        calendar: Calendar,
        *,
        refetch_sessions: int = 5,
        splits: SplitSource | None = None,
    ) -> None:
        self._cache = cache
        self._source = source
        self._calendar = calendar
        self._refetch_sessions = refetch_sessions
        self._splits = splits
        self._refetched: set[Split] = set()  # refetched since: the cache ends before the ex-date
        self._loaded: tuple[date, date, dict[Symbol, list[DailyBar]]] | None = None

    async def load(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> dict[Symbol, list[DailyBar]]:
        """Every symbol's bars of `start`..`end` (the scan day: the day after `end`), fetching only
        what the cache lacks and the whole cached window of a symbol split since it was cached."""
        started = monotonic.monotonic()
        groups: dict[date, list[Symbol]] = {}
        coverages = await self._cache.coverage_many(symbols)
        rescaled = await self._splits_since_cached(coverages, start, end + ONE_DAY)
        for sym in symbols:
            covered = coverages.get(sym)
            if covered is not None and sym in rescaled:
                groups.setdefault(min(start, covered[0]), []).append(sym)
                continue
            if covered is not None and covered[0] <= start and end <= covered[1]:
                continue
            extends = covered is not None and covered[0] <= start <= covered[1] + ONE_DAY
            fetch_from = covered[1] + ONE_DAY if covered is not None and extends else start
            groups.setdefault(fetch_from, []).append(sym)
        fetched = 0
        uncached: dict[Symbol, list[DailyBar]] = {}
        fetched_bars: dict[Symbol, list[DailyBar]] = {}
        for fetch_from, group in sorted(groups.items()):
            bars = await self._source.daily_bars_many(group, fetch_from, end)
            puts: list[DailyBarPutRequest] = []
            for sym in group:
                got = list(bars.get(sym, ()))
                fetched += len(got)
                cached_to, uncached[sym] = self._cacheable(fetch_from, end, got)
                if fetch_from == start:
                    fetched_bars[sym] = [b for b in got if b.session <= cached_to]
                if cached_to >= fetch_from:
                    puts.append(
                        (sym, fetch_from, cached_to, [b for b in got if b.session <= cached_to])
                    )
            await self._cache.put_many(puts)
        self._refetched.update(rescaled.values())
        # A symbol fetched whole is what was just put: only the others are read back.
        fetched_whole = set(groups.get(start, ()))
        fresh = {s: b for s, b in fetched_bars.items() if s in fetched_whole}
        cached = await self._cache.get_many([s for s in symbols if s not in fresh], start, end)
        cached = {**cached, **fresh}
        history = {
            sym: [
                *cached.get(sym, ()),
                *(b for b in uncached.get(sym, ()) if start <= b.session <= end),
            ]
            for sym in symbols
        }
        self._loaded = (start, end, history)
        log.info(
            "daily_history_loaded",
            symbols=len(symbols),
            stale=sum(len(g) for g in groups.values()),
            split_refetched=len(rescaled),
            bars_fetched=fetched,
            secs=round(monotonic.monotonic() - started, 3),
        )
        return history

    def loaded(self, symbol: Symbol, start: date, end: date) -> list[DailyBar] | None:
        """`symbol`'s bars of `start`..`end` from the last load when it covered them, else None."""
        if self._loaded is None:
            return None
        first, last, history = self._loaded
        if not (first <= start and end <= last) or symbol not in history:
            return None
        return [b for b in history[symbol] if start <= b.session <= end]

    async def _splits_since_cached(
        self, coverages: Mapping[Symbol, tuple[date, date]], start: date, day: date
    ) -> dict[Symbol, Split]:
        """The symbols whose cached bars (those the load would keep: extended, not replaced)
        predate a split ex-dated on or before `day`, with that split; each logged once."""
        kept = {s: c for s, c in coverages.items() if c[0] <= start <= c[1] + ONE_DAY}
        if self._splits is None or not kept:
            return {}
        since = min(c[1] for c in kept.values()) + ONE_DAY
        if since > day:
            return {}
        found: dict[Symbol, Split] = {}
        for split in await self._splits.splits(since, day):
            covered = kept.get(split.symbol)
            if covered is None or split in self._refetched or not split.after(covered[1]):
                continue
            found[split.symbol] = split
            log.warning(
                "daily_history_split_refetch",
                symbol=split.symbol,
                ratio=split.label,
                ex_date=str(split.session),
                cached_from=str(covered[0]),
                cached_to=str(covered[1]),
            )
        return found

    def _cacheable(
        self, start: date, end: date, bars: list[DailyBar]
    ) -> tuple[date, list[DailyBar]]:
        """Where the cacheable part of `bars` ends (the day before a recent hole), and the bars
        past it (used this once, asked for again next time)."""
        expected = self._calendar.sessions(start, end) if start <= end else []
        have = {b.session for b in bars}
        recent = expected[-self._refetch_sessions :] if self._refetch_sessions else []
        holes = [s.day for s in recent if s.day not in have]
        cached_to = holes[0] - ONE_DAY if holes else end
        return cached_to, [b for b in bars if b.session > cached_to]


class ListedUniverse:
    """The `UniverseSource` of a whole market: the listed symbols the filter keeps."""

    def __init__(
        self,
        assets: AssetSource,
        history: DailyHistory,
        universe_filter: UniverseFilter,
        calendar: Calendar,
        *,
        history_bars: int,
    ) -> None:
        self._assets = assets
        self._history = history
        self._filter = universe_filter
        self._calendar = calendar
        self._history_bars = max(history_bars, universe_filter.adv_period)
        self.listed = 0

    async def symbols(self, day: date) -> list[Symbol]:
        """The listed symbols whose daily history passes the filter, sorted."""
        listed = list(await self._assets.assets())
        start, end = history_window(self._calendar, day, self._history_bars)
        history = await self._history.load(listed, start, end)
        kept = [s for s in listed if self._filter.keeps(history.get(s, []))]
        self.listed = len(listed)
        log.info("universe_listed", trading_day=str(day), listed=len(listed), kept=len(kept))
        return kept


class SnapshotPremarkets:
    """Pre-markets from one round of snapshots of every symbol to scan, per scan time."""

    def __init__(
        self,
        source: SnapshotSource,
        symbols: Callable[[], Sequence[Symbol]],
        *,
        tz: ZoneInfo,
        opens: time,
    ) -> None:
        self._source = source
        self._symbols = symbols
        self._tz = tz
        self._opens = opens
        self._lock = asyncio.Lock()
        self._round: tuple[date, datetime, frozenset[Symbol], Mapping[Symbol, PremarketSnapshot]]
        self._round = (date.min, datetime.min.replace(tzinfo=UTC), frozenset(), {})

    async def premarket(self, symbol: Symbol, day: date, until: datetime) -> Premarket | None:
        """`symbol`'s pre-market of `day` up to `until` (one snapshot round serves the scan)."""
        async with self._lock:
            held = self._round
            if held[:2] != (day, until) or symbol not in held[2]:
                wanted = sorted({*self._symbols(), symbol})
                started = monotonic.monotonic()
                found = await self._source.snapshots(wanted)
                log.info(
                    "snapshots_taken",
                    symbols=len(wanted),
                    found=len(found),
                    secs=round(monotonic.monotonic() - started, 3),
                )
                held = (day, until, frozenset(wanted), found)
                self._round = held
        snap = held[3].get(symbol)
        if snap is None:
            return None
        opens = datetime.combine(day, self._opens, self._tz).astimezone(UTC)
        return snap.premarket(day, opens)
