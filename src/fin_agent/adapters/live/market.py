"""`LiveMarket`: the `MarketData` and `News` ports for live trading, on Finnhub, Yahoo and the feed.

- `daily_bars`: a `DailyBarCache` in front of the daily bar sources (Yahoo first by default),
  tried in the configured order; each day fetches only the sessions that are new, and a history
  the vendor re-adjusted, or that predates a split the vendor reports (Yahoo's split events), is
  fetched again whole. Only completed sessions are cached,
  and a hole among the latest `refetch_sessions` (a null row) is never cached as covered.
- `premarket`: the pre-market bars the feed aggregated when there are any, else Finnhub's quote.
- `session_bars`: the regular-session bars the feed aggregated (`SessionBarBuffer`).
- `headlines`: Finnhub's company news.
- The whole market (`whole_market`): with a `UniverseSource`, `symbols` is its pre-filtered
  list; with a `DailyHistory`, bars it loaded in bulk are served from it; with
  `SnapshotPremarkets`, the pre-market comes from multi-symbol snapshots, not Finnhub's quote.
The cache to give it is the store's (`Store.daily_bar_cache()`), so fetched bars outlive a restart.
`InMemoryDailyBarCache` lives in `fin_agent.adapters.memory`; it is re-exported here, where tests
import it from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import structlog

from fin_agent.adapters.finnhub.rest import FinnhubQuote
from fin_agent.adapters.live.whole_market import DailyHistory, SnapshotPremarkets
from fin_agent.adapters.memory import InMemoryDailyBarCache as InMemoryDailyBarCache
from fin_agent.domain.errors import AdapterError, ConfigError, DataError
from fin_agent.domain.splits import Split
from fin_agent.domain.values import Bar, DailyBar, Headline, Premarket, Symbol
from fin_agent.ports.calendar import Calendar
from fin_agent.ports.clock import Clock
from fin_agent.ports.daily_bar_cache import DailyBarCache
from fin_agent.ports.universe import UniverseSource

log = structlog.get_logger(__name__)

EXCHANGE_TZ = ZoneInfo("America/New_York")
PREMARKET_OPENS = time(4, 0)
ONE_DAY = timedelta(days=1)
# A session missing among this many latest ones is asked for again the next day (a null row, a
# bar published late); an older hole is the vendor's last word (a halt).
REFETCH_SESSIONS = 5


class DailyBarSource(Protocol):
    """A vendor of daily bars (`YahooDailyBars`), one of the sources tried in order."""

    @property
    def name(self) -> str:
        """The source's name in config and logs (`yahoo`)."""
        ...

    async def daily_bars(self, symbol: Symbol, start: date, end: date) -> Sequence[DailyBar]:
        """The bars of sessions `start` to `end` inclusive, oldest first."""
        ...


@runtime_checkable
class SplitReportingSource(DailyBarSource, Protocol):
    """A daily bar source that also reports the splits of the range it answers (Yahoo)."""

    async def bars_and_splits(
        self, symbol: Symbol, start: date, end: date
    ) -> tuple[Sequence[DailyBar], Sequence[Split]]:
        """The bars of sessions `start` to `end` and the splits reported from `start` on."""
        ...


class QuoteAndNewsSource(Protocol):
    """What `LiveMarket` needs of Finnhub's REST API (`FinnhubRest`)."""

    async def quote_figures(self, symbol: Symbol) -> FinnhubQuote:
        """Every figure of the quote of `symbol`."""
        ...

    async def company_news(self, symbol: Symbol, start: date, end: date) -> list[Headline]:
        """Headlines about `symbol` dated `start` to `end` inclusive, oldest first."""
        ...


class SessionBarBuffer:
    """The 1-minute bars the trade feed aggregated, by exchange day; the app fills it.

    A bar added again for the same symbol and start replaces the first (a late trade revised it).
    """

    def __init__(self, tz: ZoneInfo = EXCHANGE_TZ) -> None:
        self._tz = tz
        self._days: dict[date, dict[tuple[datetime, Symbol], Bar]] = {}

    def add(self, bars: Iterable[Bar]) -> None:
        """Keep `bars`, filed under the exchange date they start on."""
        for bar in bars:
            day = bar.start.astimezone(self._tz).date()
            self._days.setdefault(day, {})[(bar.start, bar.symbol)] = bar

    def bars(
        self, day: date, symbols: Iterable[Symbol], start: datetime, end: datetime
    ) -> list[Bar]:
        """Bars of `symbols` on `day` starting at or after `start` and ending by `end`, in
        (start, symbol) order."""
        wanted = set(symbols)
        found = self._days.get(day, {})
        return [
            found[key]
            for key in sorted(found)
            if key[1] in wanted and start <= key[0] and found[key].end <= end
        ]

    def prune(self, before: date) -> None:
        """Forget the days before `before`."""
        for day in [d for d in self._days if d < before]:
            del self._days[day]


class LiveMarket:
    """Live `MarketData` and `News`: see the module docstring for where each figure comes from."""

    def __init__(
        self,
        *,
        universe: Sequence[Symbol],
        finnhub: QuoteAndNewsSource,
        daily_sources: Sequence[DailyBarSource],
        cache: DailyBarCache,
        calendar: Calendar,
        clock: Clock,
        buffer: SessionBarBuffer | None = None,
        tz: ZoneInfo = EXCHANGE_TZ,
        premarket_opens: time = PREMARKET_OPENS,
        feed_volume: bool = True,
        refetch_sessions: int = REFETCH_SESSIONS,
        universe_source: UniverseSource | None = None,
        history: DailyHistory | None = None,
        snapshots: SnapshotPremarkets | None = None,
    ) -> None:
        if not daily_sources:
            raise ConfigError(
                "market.daily_sources is empty: list at least one daily bar source, such as yahoo"
            )
        self._universe = tuple(sorted(set(universe)))
        self._finnhub = finnhub
        self._sources = tuple(daily_sources)
        self._cache = cache
        self._calendar = calendar
        self._clock = clock
        self.buffer = buffer or SessionBarBuffer(tz)
        self._tz = tz
        self._premarket_opens = premarket_opens
        self._feed_volume = feed_volume
        if refetch_sessions < 0:
            raise ConfigError(f"market.daily_refetch_sessions must be >= 0, got {refetch_sessions}")
        self._refetch_sessions = refetch_sessions
        self._universe_source = universe_source
        self._history = history
        self._snapshots = snapshots

    @property
    def universe(self) -> tuple[Symbol, ...]:
        """The universe as last listed (the configured one until the source is asked)."""
        return self._universe

    async def symbols(self) -> Sequence[Symbol]:
        """The configured universe, or the universe source's for today, sorted."""
        if self._universe_source is not None:
            today = self._clock.now().astimezone(self._tz).date()
            self._universe = tuple(await self._universe_source.symbols(today))
        return list(self._universe)

    async def daily_bars(self, symbol: Symbol, before: date, count: int) -> Sequence[DailyBar]:
        """Up to `count` completed sessions strictly before `before`, oldest first.

        Served from the cache once it covers them; raises `AdapterError` when the bars are not
        cached and no source answers (stale bars would give a wrong previous close).
        """
        if count <= 0:
            return []
        today = self._clock.now().astimezone(self._tz).date()
        end = min(before, today) - ONE_DAY
        start = self._first_day(end, count)
        uncached = await self._refresh(symbol, start, end)
        by_session = {b.session: b for b in await self._cache.get(symbol, start, end)}
        by_session.update((b.session, b) for b in uncached if start <= b.session <= end)
        return [by_session[d] for d in sorted(by_session)][-count:]
        loaded = self._history.loaded(symbol, start, end) if self._history else None
        if loaded is not None:
            return loaded[-count:]
        uncached = await self._refresh(symbol, start, end)
        by_session = {b.session: b for b in await self._cache.get(symbol, start, end)}
        by_session.update((b.session, b) for b in uncached if start <= b.session <= end)
        return [by_session[d] for d in sorted(by_session)][-count:]

    async def premarket(self, symbol: Symbol, day: date, until: datetime) -> Premarket | None:
        """The last pre-market price of `day` up to `until`, and its volume when known.

        From the feed's pre-market bars when it aggregated any (04:00 ET to `until`; their volume
        counts IEX trades only, a small share of the market's: `feed_volume=False` reports None).
        Otherwise from Finnhub's quote: `c` is the last price, and the free quote carries no
        pre-market volume, so `volume` is None and the scan records the volume rule as skipped; its
        `pc` rides along as `quoted_prev_close` (the previous close when the daily bar is missing).
        A quote whose last trade is from before 04:00 ET of `day` had no pre-market trade: None.
        """
        opens = datetime.combine(day, self._premarket_opens, self._tz).astimezone(UTC)
        bars = self.buffer.bars(day, (symbol,), opens, until)
        if bars:
            volume = sum(b.volume for b in bars) if self._feed_volume else None
            return Premarket(symbol=symbol, last=bars[-1].close, volume=volume, as_of=bars[-1].end)
        if self._snapshots is not None:
            return await self._snapshots.premarket(symbol, day, until)
        quote = await self._finnhub.quote_figures(symbol)
        if not quote.known or quote.at is None:
            log.info("premarket_unknown_symbol", symbol=symbol)
            return None
        if quote.at < opens:
            log.info("premarket_no_trade", symbol=symbol, last_trade_at=quote.at.isoformat())
            return None
        quoted = quote.prev_close if quote.prev_close > 0 else None
        return Premarket(
            symbol=symbol, last=quote.last, volume=None, as_of=quote.at, quoted_prev_close=quoted
        )

    async def session_bars(self, day: date, symbols: Sequence[Symbol]) -> Sequence[Bar]:
        """The feed's 1-minute bars of the regular session of `day`, by (start, symbol)."""
        session = self._calendar.session(day)
        if session is None:
            return []
        return self.buffer.bars(day, symbols, session.open, session.close)

    async def headlines(
        self, symbol: Symbol, since: datetime, until: datetime
    ) -> Sequence[Headline]:
        """Finnhub's company news about `symbol` published in [since, until), oldest first.

        Finnhub takes dates; the request spans a day more on each side and is cut to the instant.
        """
        start = since.astimezone(UTC).date() - ONE_DAY
        end = until.astimezone(UTC).date() + ONE_DAY
        news = await self._finnhub.company_news(symbol, start, end)
        return [h for h in news if since <= h.published_at < until]

    def _first_day(self, end: date, count: int) -> date:
        """The first of the `count` sessions up to `end` (by the calendar)."""
        span = end - timedelta(days=count * 2 + 14)
        sessions = self._calendar.sessions(span, end)
        return sessions[-count].day if len(sessions) >= count else span

    async def _refresh(self, symbol: Symbol, start: date, end: date) -> list[DailyBar]:
        """Make the cache cover `start`..`end`, fetching as little as possible; returns the bars
        fetched past a recent gap, which are not cached (the gap is asked for again next time)."""
        if end < start:
            return []
        covered = await self._cache.coverage(symbol)
        if covered is not None and covered[0] <= start and end <= covered[1]:
            return []
        if covered is None or start < covered[0] or start > covered[1] + ONE_DAY:
            # Nothing usable cached (or an older start): one call fetches the whole range.
            whole_end = max(end, covered[1]) if covered and start <= covered[1] else end
            return await self._store(
                symbol, start, whole_end, await self._fetch(symbol, start, whole_end)
            )
        cached = await self._cache.get(symbol, covered[0], covered[1])
        anchor = cached[-1] if cached else None
        fetch_from = anchor.session if anchor else covered[1] + ONE_DAY
        bars, splits = await self._fetch_history(symbol, fetch_from, end)
        fresh = next((b for b in bars if anchor and b.session == anchor.session), None)
        # A split the source reports after the cached bars end: they are on the old scale (once
        # the vendor re-scales; until then the scan's split guard is the fallback).
        split = next((x for x in splits if anchor and x.after(anchor.session)), None)
        rescaled = anchor and fresh and (fresh.close, fresh.open) != (anchor.close, anchor.open)
        if anchor and (rescaled or split is not None):
            # The vendor re-scaled its history (a split): every cached bar is on the old scale.
            log.warning(
                "daily_history_readjusted",
                symbol=symbol,
                session=str(anchor.session),
                cached_close=str(anchor.close),
                fetched_close=str(fresh.close) if fresh else None,
                split=split.label if split else None,
                split_session=str(split.session) if split else None,
            )
            first = min(start, covered[0])
            return await self._store(symbol, first, end, await self._fetch(symbol, first, end))
        return await self._store(symbol, fetch_from, end, bars)

    async def _fetch(self, symbol: Symbol, start: date, end: date) -> list[DailyBar]:
        """The bars of the first source that has some."""
        bars, _ = await self._fetch_history(symbol, start, end)
        return bars

    async def _fetch_history(
        self, symbol: Symbol, start: date, end: date
    ) -> tuple[list[DailyBar], tuple[Split, ...]]:
        """The first source with bars wins, with the splits it reports (none from a source that
        reports none); errors fall through to the next source."""
        errors: list[str] = []
        for source in self._sources:
            try:
                if isinstance(source, SplitReportingSource):
                    found, reported = await source.bars_and_splits(symbol, start, end)
                    bars, splits = list(found), tuple(reported)
                else:
                    bars, splits = list(await source.daily_bars(symbol, start, end)), ()
            except (AdapterError, DataError) as exc:
                log.warning(
                    "daily_source_failed", source=source.name, symbol=symbol, error=str(exc)
                )
                errors.append(f"{source.name}: {exc}")
                continue
            if bars:
                return bars, splits
        if errors and len(errors) == len(self._sources):
            raise AdapterError(
                f"no daily bar source answered for {symbol} {start}..{end} ({'; '.join(errors)}); "
                "the scan cannot use stale bars: check the sources' status or market.daily_sources"
            )
        return [], ()

    async def _store(
        self, symbol: Symbol, start: date, end: date, bars: list[DailyBar]
    ) -> list[DailyBar]:
        """Cache `bars`, but never mark a session fetched that the source has not published.

        A session missing among the last `refetch_sessions` of the range (a null row, a bar not
        published yet) ends what is cached the day before it, so the next day asks for it again;
        an older hole is taken as the vendor's last word (a halt) and cached as covered. Returns
        the bars past the cached part, for the caller to use this once.
        """
        expected = self._calendar.sessions(start, end)
        have = {b.session for b in bars}
        recent = expected[-self._refetch_sessions :] if self._refetch_sessions else []
        holes = [s.day for s in recent if s.day not in have]
        complete_to = end
        if holes:
            complete_to = holes[0] - ONE_DAY
            log.info(
                "daily_bars_incomplete",
                symbol=symbol,
                missing=[str(d) for d in holes],
                cached_to=str(complete_to),
            )
        if complete_to >= start:
            await self._cache.put(
                symbol, start, complete_to, [b for b in bars if b.session <= complete_to]
            )
        return [b for b in bars if b.session > complete_to]
