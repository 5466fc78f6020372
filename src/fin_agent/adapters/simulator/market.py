"""A seeded simulator of trading days: offline `MarketData` and `News` for the demo and backtests.

Each day a few symbols gap, trade pre-market, then go, fade, chop or fail after the open.
"""

from __future__ import annotations

import math
import operator
import random
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TypeVar

from fin_agent.adapters.simulator.day import (
    DayDraws,
    DayPlan,
    Regime,
    draw_day,
    draw_move,
    plan_day,
)
from fin_agent.adapters.simulator.news import (
    EXCHANGE_TZ,
    catalyst_minute,
    make_headlines,
    session_news,
)
from fin_agent.adapters.simulator.paths import DayCents, day_cents, premarket_cents, session_cents
from fin_agent.adapters.simulator.universe import Universe
from fin_agent.domain.errors import DataError
from fin_agent.domain.news import NewsItem
from fin_agent.domain.values import Bar, DailyBar, Headline, Premarket, Session, Symbol, utc
from fin_agent.ports.calendar import Calendar

# The price level is a slowly mean-reverting sum of past daily returns over a fixed window of
# calendar days, so any day's close is computed on its own, identically, in any call order.
LEVEL_WINDOW_DAYS = 120
REVERSION_PER_DAY = 0.03
_KEEP = 1 - REVERSION_PER_DAY
_TAIL = _KEEP**LEVEL_WINDOW_DAYS
_WEIGHTS = tuple((_KEEP**k - _TAIL) / (1 - _TAIL) for k in range(LEVEL_WINDOW_DAYS))

PREMARKET_START = time(4, 0)
LATEST_CATALYST_MINUTE = 270  # 08:30 ET: gappers have jumped well before the 09:00 scan
CACHED_DAYS = 8  # minute bars and pre-market paths are kept for this many recent days
_HISTORY_CHUNK_DAYS = 60

_T = TypeVar("_T")


class SimulatedMarket:
    """A deterministic market of made-up tickers, implementing both `MarketData` and `News`.

    Answers depend only on (seed, symbol, day); each daily bar aggregates its session's minute bars.
    """

    def __init__(self, seed: int, calendar: Calendar, universe_size: int = 40) -> None:
        self._seed = seed
        self._calendar = calendar
        self._universe = Universe(seed, universe_size)
        self._sessions: dict[date, Session | None] = {}
        self._previous: dict[date, date | None] = {}
        self._plans: dict[date, DayPlan] = {}
        self._draws: dict[tuple[Symbol, date], DayDraws] = {}
        self._returns: dict[Symbol, dict[int, float]] = {}
        self._levels: dict[tuple[Symbol, date], float] = {}
        self._days: dict[tuple[Symbol, date], DayCents] = {}
        self._news: dict[tuple[Symbol, date], tuple[Headline, ...]] = {}
        self._bars: OrderedDict[date, dict[Symbol, tuple[Bar, ...]]] = OrderedDict()
        self._premarkets: OrderedDict[date, dict[Symbol, tuple[list[int], list[int]]]] = (
            OrderedDict()
        )
        self._decimals: dict[int, Decimal] = {}

    # --- MarketData -------------------------------------------------------------------------

    async def symbols(self) -> Sequence[Symbol]:
        """Return the universe's tickers, sorted."""
        return list(self._universe.symbols)

    async def daily_bars(self, symbol: Symbol, before: date, count: int) -> Sequence[DailyBar]:
        """Return up to `count` daily bars of sessions before `before`, oldest first.

        An IPO slot's history starts at the listing of the company trading on `before`.
        """
        if count <= 0 or symbol not in self._universe:
            return []
        listed = self._universe.listed_since(symbol, before)
        found: list[DailyBar] = []
        end = before - timedelta(days=1)
        while len(found) < count and (listed is None or end >= listed):
            start = end - timedelta(days=_HISTORY_CHUNK_DAYS - 1)
            if listed is not None:
                start = max(start, listed)
            sessions = self._calendar.sessions(start, end)
            if not sessions:
                break  # the calendar knows no sessions this far back
            for session in reversed(sessions):
                found.append(self._daily_bar(symbol, session.day))
                if len(found) == count:
                    break
            end = start - timedelta(days=1)
        found.reverse()
        return found

    async def premarket(self, symbol: Symbol, day: date, until: datetime) -> Premarket | None:
        """Return the last pre-market price and volume from 04:00 ET up to `until` (or the open).

        None on a day that is not a session, for an unknown symbol and on an IPO's listing day.
        """
        session = self._session(day)
        if session is None or symbol not in self._universe or self._is_listing_day(symbol, day):
            return None
        previous = self._previous_day(day)
        if previous is None:
            return None
        start = datetime.combine(day, PREMARKET_START, EXCHANGE_TZ).astimezone(UTC)
        as_of = min(utc(until), session.open)
        prices, volumes = self._premarket_minutes(symbol, session, previous, start)
        cut = max(0, min(len(prices), int((as_of - start).total_seconds() // 60)))
        last = self._day(symbol, previous).close
        for minute in range(cut - 1, -1, -1):
            if volumes[minute] > 0:
                last = prices[minute]
                break
        return Premarket(
            symbol=symbol, last=self._dec(last), volume=sum(volumes[:cut]), as_of=as_of
        )

    async def session_bars(self, day: date, symbols: Sequence[Symbol]) -> Sequence[Bar]:
        """Return the regular-session 1-minute bars of `symbols` on `day` by (start, symbol)."""
        session = self._session(day)
        if session is None:
            return []
        wanted = sorted({s for s in symbols if s in self._universe})
        per_symbol = [self._symbol_bars(s, session) for s in wanted]
        per_symbol = [bars for bars in per_symbol if bars]
        if not per_symbol:
            return []
        return [bars[t] for t in range(len(per_symbol[0])) for bars in per_symbol]

    def premarket_bars(self, symbol: Symbol, day: date) -> list[Bar]:
        """Return the pre-market 1-minute bars (04:00 ET to the open) of `symbol` on `day` that
        traded, for writing bar files (a benchmark's synthetic universe)."""
        session = self._session(day)
        previous = self._previous_day(day)
        if session is None or previous is None or symbol not in self._universe:
            return []
        if self._is_listing_day(symbol, day):
            return []
        start = datetime.combine(day, PREMARKET_START, EXCHANGE_TZ).astimezone(UTC)
        prices, volumes = self._premarket_minutes(symbol, session, previous, start)
        return [
            Bar(
                symbol=symbol,
                start=start + timedelta(minutes=minute),
                open=self._dec(price),
                high=self._dec(price),
                low=self._dec(price),
                close=self._dec(price),
                volume=volume,
            )
            for minute, (price, volume) in enumerate(zip(prices, volumes, strict=True))
            if volume > 0
        ]

    def gappers(self, day: date) -> tuple[Symbol, ...]:
        """Return the symbols the simulator makes gap on the session `day`, sorted."""
        if self._session(day) is None:
            return ()
        return tuple(sorted(self._plan(day).gaps))

    # --- News -------------------------------------------------------------------------------

    async def headlines(
        self, symbol: Symbol, since: datetime, until: datetime
    ) -> Sequence[Headline]:
        """Return the made-up headlines about `symbol` published in [since, until), oldest first."""
        since, until = utc(since), utc(until)
        if symbol not in self._universe or until <= since:
            return []
        day = since.astimezone(EXCHANGE_TZ).date()
        last = until.astimezone(EXCHANGE_TZ).date() + timedelta(days=1)
        found: list[Headline] = []
        while day <= last:
            if self._session(day) is not None:
                found.extend(
                    h for h in self._headlines(symbol, day) if since <= h.published_at < until
                )
            day += timedelta(days=1)
        return sorted(found, key=lambda h: (h.published_at, h.title))

    async def news_of(self, day: date) -> Sequence[NewsItem]:
        """The session's news as a stream brings it: every symbol's headlines of the 24 hours
        before the scan, then follow-ups during the session, oldest first."""
        if self._session(day) is None:
            return []
        found: list[NewsItem] = []
        for name in self._universe.symbols:
            profile = self._universe.profile(name, day)
            draws = self._day_draws(name, day)
            found.extend(session_news(self._seed, profile, day, draws, self._headlines(name, day)))
        return sorted(found, key=lambda i: (i.published_at, i.news_id))

    # --- the calendar, remembered ----------------------------------------------------------

    def _session(self, day: date) -> Session | None:
        if day not in self._sessions:
            self._sessions[day] = self._calendar.session(day)
        return self._sessions[day]

    def _known_session(self, day: date) -> Session:
        session = self._session(day)
        if session is None:
            raise DataError(f"{day} is not a session of the calendar: ask about sessions only")
        return session

    def _previous_day(self, day: date) -> date | None:
        if day not in self._previous:
            previous = self._calendar.previous_session(day)
            self._previous[day] = None if previous is None else previous.day
        return self._previous[day]

    def _is_listing_day(self, symbol: Symbol, day: date) -> bool:
        listed = self._universe.listed_since(symbol, day)
        if listed is None:
            return False
        previous = self._previous_day(day)
        return previous is None or previous < listed

    # --- the day, drawn ---------------------------------------------------------------------

    def _plan(self, day: date) -> DayPlan:
        plan = self._plans.get(day)
        if plan is None:
            eligible = [s for s in self._universe.symbols if not self._is_listing_day(s, day)]
            plan = self._plans[day] = plan_day(self._seed, day, eligible)
        return plan

    def _day_draws(self, symbol: Symbol, day: date) -> DayDraws:
        key = (symbol, day)
        draws = self._draws.get(key)
        if draws is None:
            session = self._known_session(day)
            plan = self._plan(day)
            draws = self._draws[key] = draw_day(
                self._seed,
                self._universe.profile(symbol, day),
                day,
                _minutes(session.open, session.close),
                plan.gaps.get(symbol),
                symbol in plan.news_only,
                self._is_listing_day(symbol, day),
            )
        return draws

    def _return(self, symbol: Symbol, ordinal: int) -> float:
        """Log return, previous close to close, of the calendar day `ordinal` (0 if no session)."""
        series = self._returns.setdefault(symbol, {})
        found = series.get(ordinal)
        if found is None:
            day = date.fromordinal(ordinal)
            found = 0.0
            if self._session(day) is not None:
                move = draw_move(
                    self._seed,
                    self._universe.profile(symbol, day),
                    day,
                    self._plan(day).gaps.get(symbol),
                    self._is_listing_day(symbol, day),
                )
                found = move.gap_log + move.close_log
            series[ordinal] = found
        return found

    def _level(self, symbol: Symbol, day: date) -> float:
        """Log close of `symbol` on the session `day`: its anchor plus weighted recent returns."""
        key = (symbol, day)
        level = self._levels.get(key)
        if level is None:
            profile = self._universe.profile(symbol, day)
            span = LEVEL_WINDOW_DAYS
            if profile.listed is not None:  # an IPO's history starts at its listing
                span = min(span, (day - profile.listed).days + 1)
            ordinal = day.toordinal()
            series = self._returns.setdefault(symbol, {})
            returns = [
                series.get(at) or self._return(symbol, at)
                for at in range(ordinal, ordinal - span, -1)
            ]
            total = sum(map(operator.mul, _WEIGHTS, returns))
            level = self._levels[key] = math.log(profile.base_price) + total
        return level

    def _day(self, symbol: Symbol, day: date) -> DayCents:
        key = (symbol, day)
        found = self._days.get(key)
        if found is None:
            session = self._known_session(day)
            profile = self._universe.profile(symbol, day)
            draws = self._day_draws(symbol, day)
            previous = self._previous_day(day)
            if previous is None or self._is_listing_day(symbol, day):
                log_open = math.log(profile.base_price)
            else:
                log_open = self._level(symbol, previous) + draws.move.gap_log
            found = self._days[key] = day_cents(
                math.exp(log_open),
                math.exp(self._level(symbol, day)),
                draws.points,
                _minutes(session.open, session.close),
                draws.wick_high,
                draws.wick_low,
                round(profile.adv * draws.volume_mult),
            )
        return found

    def _daily_bar(self, symbol: Symbol, day: date) -> DailyBar:
        cents = self._day(symbol, day)
        return DailyBar(
            symbol=symbol,
            session=day,
            open=self._dec(cents.open),
            high=self._dec(cents.high),
            low=self._dec(cents.low),
            close=self._dec(cents.close),
            volume=cents.volume,
        )

    def _headlines(self, symbol: Symbol, day: date) -> tuple[Headline, ...]:
        key = (symbol, day)
        found = self._news.get(key)
        if found is None:
            profile = self._universe.profile(symbol, day)
            found = make_headlines(self._seed, profile, day, self._day_draws(symbol, day))
            self._news[key] = found
        return found

    # --- minute paths ----------------------------------------------------------------------

    def _symbol_bars(self, symbol: Symbol, session: Session) -> tuple[Bar, ...]:
        day = session.day
        cached = _recent(self._bars, day)
        if symbol not in cached:
            draws = self._day_draws(symbol, day)
            rng = random.Random(f"{self._seed}:{symbol}:{day.isoformat()}:bars")
            bars = _minutes(session.open, session.close)
            cents = session_cents(rng, self._day(symbol, day), bars, draws.noise, draws.halt)
            dec = self._dec
            cached[symbol] = tuple(
                Bar(
                    symbol=symbol,
                    start=session.open + timedelta(minutes=t),
                    open=dec(o),
                    high=dec(h),
                    low=dec(lo),
                    close=dec(c),
                    volume=v,
                )
                for t, (o, h, lo, c, v) in enumerate(cents)
            )
        return cached[symbol]

    def _premarket_minutes(
        self, symbol: Symbol, session: Session, previous: date, start: datetime
    ) -> tuple[list[int], list[int]]:
        day = session.day
        cached = _recent(self._premarkets, day)
        if symbol not in cached:
            draws = self._day_draws(symbol, day)
            rng = random.Random(f"{self._seed}:{symbol}:{day.isoformat()}:pm")
            minutes = _minutes(start, session.open)
            jump: int | None = None
            if draws.move.regime is not Regime.DRIFT:
                news = self._headlines(symbol, day)
                latest = min(LATEST_CATALYST_MINUTE, minutes - 1)
                jump = catalyst_minute(news, start, latest) if news else rng.randint(0, latest)
            cached[symbol] = premarket_cents(
                rng,
                self._day(symbol, previous).close,
                self._day(symbol, day).open,
                minutes,
                jump,
                draws.move.gap_log,
                draws.pm_volume,
            )
        return cached[symbol]

    def _dec(self, cents: int) -> Decimal:
        found = self._decimals.get(cents)
        if found is None:
            found = self._decimals[cents] = Decimal(cents).scaleb(-2)
        return found


def _minutes(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() // 60)


def _recent(cache: OrderedDict[date, dict[Symbol, _T]], day: date) -> dict[Symbol, _T]:
    """Return the cache entry of `day`, keeping only the CACHED_DAYS most recently used days."""
    if day in cache:
        cache.move_to_end(day)
        return cache[day]
    entry: dict[Symbol, _T] = {}
    cache[day] = entry
    while len(cache) > CACHED_DAYS:
        cache.popitem(last=False)
    return entry
