"""In-memory adapters for every port: fast, deterministic fakes for tests and the in-process demo.

Contract tests run the same suites against these and the real adapters, which keeps them honest.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import perf_counter
from zoneinfo import ZoneInfo

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.storage.candles import candles_of
from fin_agent.adapters.storage.daily_bar_put import plan_put
from fin_agent.adapters.storage.memory_scan_records import InMemoryScanRecords
from fin_agent.adapters.storage.queries import check_limit, order_columns, table_of
from fin_agent.adapters.storage.rows import (
    SCHEMA_VERSION,
    SIX_PLACES,
    TABLES,
    Kind,
    Projector,
    RowValues,
)
from fin_agent.domain.errors import DataError
from fin_agent.domain.events import DomainEvent
from fin_agent.domain.values import Bar, DailyBar, Headline, Premarket, Session, Symbol
from fin_agent.ports.daily_bar_cache import DailyBarCache, DailyBarPutRequest
from fin_agent.ports.event_bus import ALL_EVENTS, BatchHandler, Handler, Observer
from fin_agent.ports.scan_records import ScanRecords
from fin_agent.ports.store import CandleWidth, Row, StoreInfo

EXCHANGE_TZ = ZoneInfo("America/New_York")


class FixedClock:
    """A clock that only moves when told to: tests and simulations set the time explicitly."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the instant the clock was last set to."""
        return self._now

    def set(self, instant: datetime) -> None:
        """Move the clock to `instant` (never backwards)."""
        instant = instant.astimezone(UTC)
        if instant < self._now:
            raise ValueError(f"FixedClock cannot go back from {self._now} to {instant}")
        self._now = instant

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        self.set(self._now + delta)


class FixedCalendar:
    """Weekday sessions 09:30-16:00 New York time, less the given holidays, with early closes.

    For tests, simulations and backtests; the exchange's real calendar is a separate adapter.
    """

    def __init__(
        self,
        holidays: Iterable[date] = (),
        early_closes: Iterable[date] = (),
        early_close_time: time = time(13, 0),
    ) -> None:
        self._holidays = frozenset(holidays)
        self._early = frozenset(early_closes)
        self._early_close_time = early_close_time

    def session(self, day: date) -> Session | None:
        """Return the session on `day`, or None on weekends and holidays."""
        if day.weekday() >= 5 or day in self._holidays:
            return None
        early = day in self._early
        close_at = self._early_close_time if early else time(16, 0)
        return Session(
            day=day,
            open=datetime.combine(day, time(9, 30), EXCHANGE_TZ).astimezone(UTC),
            close=datetime.combine(day, close_at, EXCHANGE_TZ).astimezone(UTC),
            early_close=early,
        )

    def sessions(self, start: date, end: date) -> Sequence[Session]:
        """Return the sessions from `start` to `end` inclusive."""
        found: list[Session] = []
        day = start
        while day <= end:
            session = self.session(day)
            if session is not None:
                found.append(session)
            day += timedelta(days=1)
        return found

    def previous_session(self, day: date) -> Session | None:
        """Return the last session before `day` (looking back at most a month)."""
        for back in range(1, 32):
            session = self.session(day - timedelta(days=back))
            if session is not None:
                return session
        return None


@dataclass
class InMemoryMarketData:
    """Market data held in lists: daily bars, pre-market figures and intraday bars."""

    daily: dict[Symbol, list[DailyBar]] = field(default_factory=dict)
    premarkets: dict[tuple[Symbol, date], Premarket] = field(default_factory=dict)
    intraday: dict[date, list[Bar]] = field(default_factory=dict)

    def add_daily(self, bars: Iterable[DailyBar]) -> None:
        """Add daily bars, keeping each symbol's list sorted by session."""
        for bar in bars:
            series = self.daily.setdefault(bar.symbol, [])
            series.append(bar)
            series.sort(key=lambda b: b.session)

    def add_intraday(self, bars: Iterable[Bar]) -> None:
        """Add intraday bars, grouped by their UTC start date in New York time."""
        for bar in bars:
            day = bar.start.astimezone(EXCHANGE_TZ).date()
            self.intraday.setdefault(day, []).append(bar)
        for day_bars in self.intraday.values():
            day_bars.sort(key=lambda b: (b.start, b.symbol))

    async def symbols(self) -> Sequence[Symbol]:
        """Return every symbol with daily or intraday data."""
        names = set(self.daily)
        for bars in self.intraday.values():
            names.update(b.symbol for b in bars)
        return sorted(names)

    async def daily_bars(self, symbol: Symbol, before: date, count: int) -> Sequence[DailyBar]:
        """Return up to `count` daily bars strictly before `before`, oldest first."""
        series = self.daily.get(symbol, [])
        cut = bisect.bisect_left([b.session for b in series], before)
        return series[max(0, cut - count) : cut]

    async def premarket(self, symbol: Symbol, day: date, until: datetime) -> Premarket | None:
        """Return the stored pre-market figures of `symbol` on `day`, if any."""
        return self.premarkets.get((symbol, day))

    async def session_bars(self, day: date, symbols: Sequence[Symbol]) -> Sequence[Bar]:
        """Return the day's bars of `symbols`, ordered by (start, symbol)."""
        wanted = set(symbols)
        return [b for b in self.intraday.get(day, []) if b.symbol in wanted]


@dataclass
class InMemoryNews:
    """Headlines held in a list."""

    items: list[Headline] = field(default_factory=list)

    async def headlines(
        self, symbol: Symbol, since: datetime, until: datetime
    ) -> Sequence[Headline]:
        """Return the headlines about `symbol` published in [since, until), oldest first."""
        found = [h for h in self.items if h.symbol == symbol and since <= h.published_at < until]
        return sorted(found, key=lambda h: h.published_at)


class InMemoryDailyBarCache:
    """A `DailyBarCache` in dictionaries: the `InMemoryStore`'s, and the fake of the SQL caches."""

    def __init__(self) -> None:
        self._bars: dict[Symbol, dict[date, DailyBar]] = {}
        self._coverage: dict[Symbol, tuple[date, date]] = {}

    async def coverage(self, symbol: Symbol) -> tuple[date, date] | None:
        """The first and last date the cache holds every bar of, or None."""
        return self._coverage.get(symbol)

    async def get(self, symbol: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        """The cached bars of sessions `start` to `end` inclusive, oldest first."""
        series = self._bars.get(symbol, {})
        return [series[d] for d in sorted(series) if start <= d <= end]

    async def put(self, symbol: Symbol, start: date, end: date, bars: Sequence[DailyBar]) -> None:
        """Record `bars` as every bar of `start`..`end` (see `DailyBarCache.put`)."""
        change = plan_put(symbol, start, end, bars, self._coverage.get(symbol))
        series = self._bars.setdefault(symbol, {})
        if change.fresh:
            series.clear()
        else:
            for day in [d for d in series if start <= d <= end]:
                del series[day]
        series.update((b.session, b) for b in change.bars)
        self._coverage[symbol] = change.coverage

    async def coverage_many(self, symbols: Sequence[Symbol]) -> dict[Symbol, tuple[date, date]]:
        """`coverage` of many symbols (a symbol with none is missing)."""
        return {s: self._coverage[s] for s in symbols if s in self._coverage}

    async def get_many(
        self, symbols: Sequence[Symbol], start: date, end: date
    ) -> dict[Symbol, Sequence[DailyBar]]:
        """`get` of many symbols (a symbol with no bar is missing)."""
        found = {s: await self.get(s, start, end) for s in symbols}
        return {s: bars for s, bars in found.items() if bars}

    async def put_many(self, puts: Sequence[DailyBarPutRequest]) -> None:
        """`put` of each request in turn (one a symbol, as the SQL caches require)."""
        names = [p[0] for p in puts]
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise DataError(f"daily bar cache put_many names {twice} twice: merge its puts")
        for symbol, start, end, bars in puts:
            await self.put(symbol, start, end, bars)


class InMemoryEventBus:
    """In-process dispatch: handlers run in publish order; events they publish queue behind.

    Batch groups get, once the queue is empty, every event of theirs that the publish (and the
    handlers it set off) produced: one batch per outermost publish.
    """

    def __init__(self, observer: Observer | None = None, *, keep_published: bool = True) -> None:
        """`keep_published`: keep every event in `published` (tests read it; a long backtest
        would hold each day's events in memory for nothing)."""
        self._observe = observer
        self._keep = keep_published
        self._groups: list[tuple[str, frozenset[str], Handler]] = []
        self._batch_groups: list[tuple[str, frozenset[str], BatchHandler]] = []
        self._queue: deque[DomainEvent] = deque()
        self._dispatching = False
        self.published: list[DomainEvent] = []

    @property
    def started_empty(self) -> bool:
        """False: nothing of an earlier process is expected here (the store holds it all)."""
        return False

    def subscribe(self, group: str, event_types: Collection[str], handler: Handler) -> None:
        """Call `handler` for every event of `event_types` ("*" for all) as group `group`."""
        self._groups.append((group, frozenset(event_types), handler))

    def subscribe_batch(
        self, group: str, event_types: Collection[str], handler: BatchHandler
    ) -> None:
        """Call `handler` with the group's events of each publish, once they are dispatched."""
        self._batch_groups.append((group, frozenset(event_types), handler))

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Queue events and dispatch them (and whatever their handlers publish) in order."""
        self._queue.extend(events)
        if self._keep:
            self.published.extend(events)
        if self._dispatching:
            return
        self._dispatching = True
        dispatched: list[DomainEvent] = []
        try:
            while self._queue:
                event = self._queue.popleft()
                dispatched.append(event)
                for group, types, handler in self._groups:
                    if _wants(types, event):
                        started = perf_counter()
                        await handler(event)
                        if self._observe is not None:
                            self._observe(group, event.TYPE, perf_counter() - started, True)
            for group, types, batch_handler in self._batch_groups:
                batch = [e for e in dispatched if _wants(types, e)]
                if batch:
                    started = perf_counter()
                    await batch_handler(batch)
                    if self._observe is not None:
                        share = (perf_counter() - started) / len(batch)
                        for event in batch:
                            self._observe(group, event.TYPE, share, True)
        finally:
            self._dispatching = False

    async def start(self) -> None:
        """Nothing to connect."""

    async def drain(
        self, timeout_secs: float | None = None, groups: Collection[str] | None = None
    ) -> None:
        """Dispatch is synchronous: everything published has been handled."""

    async def trim(self, retain_secs: float = 0.0) -> Mapping[str, int]:
        """Events are handled as they are published: nothing waits to be trimmed."""
        return {}

    async def ping(self) -> None:
        """An in-process bus is always there."""

    async def stop(self) -> None:
        """Nothing to disconnect."""


def _wants(types: frozenset[str], event: DomainEvent) -> bool:
    return ALL_EVENTS in types or event.TYPE in types


class InMemoryStore:
    """The `Store` in dicts: the rows, keys, order and dedupe of the SQL stores, in process.

    Each event is kept once, as the object: its raw log row (payload JSON) and its projection
    rows are made again from it when a table is read (a 7,000-symbol scan's JSON and rejection
    rows kept beside the event tripled what a long backtest held). Rows come from the same
    `Projector` and are normalised as the databases return them (numbers at six places,
    timestamps in UTC), so `rows()` answers exactly what DuckDB's would.
    """

    def __init__(self, codec: EventCodec) -> None:
        self._projector = Projector(codec)
        self._events: dict[tuple[object, ...], DomainEvent] = {}  # in the order written
        self._of_type: dict[str, list[DomainEvent]] = {}  # a type's few reports need no full sort
        self._ordered: dict[str, list[RowValues]] = {}  # sorted rows per table, reset by writes
        self._event_order: list[DomainEvent] | None = None
        self._daily_bars = InMemoryDailyBarCache()
        self._scan_records = InMemoryScanRecords()
        self._key_at = {n: [t.names.index(k) for k in t.key] for n, t in TABLES.items()}
        self._kinds_at = {
            n: tuple(
                tuple(i for i, c in enumerate(t.columns) if c.kind is kind)
                for kind in (Kind.NUMERIC, Kind.TIMESTAMP)
            )
            for n, t in TABLES.items()
        }

    async def migrate(self) -> StoreInfo:
        """Nothing to create: say what the store is."""
        return StoreInfo(backend="memory", schema_version=SCHEMA_VERSION, detail="in process")

    async def write(self, events: Sequence[DomainEvent]) -> int:
        """Keep events whose key is new; return how many events were new.

        The batch is projected first, as the SQL stores do, so that whatever cannot be stored
        (an unknown type, a number out of range) fails before anything is kept; the rows are
        then dropped: `rows()` makes them again from the kept events.
        """
        for name, rows in self._projector.rows(events).items():
            for row in rows:
                _stored_row(row, *self._kinds_at[name])
        seen: set[str] = set()
        new = 0
        for event in events:
            if event.id in seen:  # the projector keeps the first of a repeated id
                continue
            seen.add(event.id)
            key = (event.id, event.occurred_at)
            if key in self._events:
                continue
            self._events[key] = event
            self._of_type.setdefault(event.TYPE, []).append(event)
            new += 1
        if new:
            self._ordered.clear()
            self._event_order = None
        return new

    async def events(
        self,
        *,
        day: date | None = None,
        types: Collection[str] | None = None,
        limit: int | None = None,
    ) -> Sequence[DomainEvent]:
        """Stored events by occurred_at then id, filtered by trading day and type."""
        check_limit(limit)
        if types is not None:
            of_types = [e for t in set(types) for e in self._of_type.get(t, ())]
            ordered = sorted(of_types, key=_event_order)
        else:
            if self._event_order is None:
                self._event_order = sorted(self._events.values(), key=_event_order)
            ordered = self._event_order
        found = [e for e in ordered if day is None or e.trading_day == day]
        return found if limit is None else found[:limit]

    async def rows(
        self, table: str, *, day: date | None = None, limit: int | None = None
    ) -> Sequence[Row]:
        """Rows of a projection table, oldest first (by its time column, then its key)."""
        spec = table_of(table)
        check_limit(limit)
        rows = self._ordered.get(table)
        if rows is None:
            at = [spec.names.index(c) for c in order_columns(spec)]
            rows = sorted(self._table(table), key=lambda r: tuple(r[i] for i in at))
            self._ordered[table] = rows
        if day is not None:
            if "trading_day" not in spec.names:
                raise DataError(f"table {table!r} has no trading_day: read it without a day")
            day_at = spec.names.index("trading_day")
            rows = [r for r in rows if r[day_at] == day]
        return [dict(zip(spec.names, r, strict=True)) for r in rows[:limit]]

    def _table(self, table: str) -> Iterable[RowValues]:
        """The rows of `table` made from the kept events in the order written, the first row of
        a key kept (as the SQL stores' inserts keep it: a bar stored under an earlier event)."""
        kinds, key_at = self._kinds_at[table], self._key_at[table]
        found: dict[tuple[object, ...], RowValues] = {}
        for row in self._projector.table_rows(table, self._events.values()):
            row = _stored_row(row, *kinds)
            found.setdefault(tuple([row[i] for i in key_at]), row)
        return found.values()

    async def days(self) -> Sequence[date]:
        """Trading days with stored events, oldest first."""
        return sorted({e.trading_day for e in self._events.values()})

    async def candles(
        self, width: CandleWidth, *, day: date | None = None, symbol: str | None = None
    ) -> Sequence[Row]:
        """Minute bars bucketed by `width` in Python (`candles_of`), as the SQL stores do."""
        bars = await self.rows("bars_1m", day=day)
        return candles_of((b for b in bars if symbol is None or b["symbol"] == symbol), width)

    def daily_bar_cache(self) -> DailyBarCache:
        """The store's one `InMemoryDailyBarCache`: every call answers the same bars."""
        return self._daily_bars

    def scan_records(self) -> ScanRecords:
        """The store's one `InMemoryScanRecords` (compact columns, not objects)."""
        return self._scan_records

    async def ping(self) -> None:
        """Always ready."""

    async def close(self) -> None:
        """Nothing to release; the rows stay readable."""


def _event_order(event: DomainEvent) -> tuple[datetime, str]:
    return (event.occurred_at, event.id)


def _stored_row(row: RowValues, numeric_at: Sequence[int], time_at: Sequence[int]) -> RowValues:
    """`row` as a database gives it back: its numeric columns (`numeric_at`) at six places, its
    timestamp columns (`time_at`) in UTC; the other columns as they are."""
    values = list(row)
    for i in numeric_at:
        if isinstance(number := values[i], Decimal):
            values[i] = number.quantize(SIX_PLACES)
    for i in time_at:
        if isinstance(moment := values[i], datetime):
            values[i] = moment.astimezone(UTC)
    return tuple(values)
