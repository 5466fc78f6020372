"""The seeded market simulator: deterministic, self-consistent, and rich enough to trade."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.memory import FixedCalendar
from fin_agent.adapters.simulator.market import SimulatedMarket
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import Bar, DailyBar, Premarket, Symbol, symbol
from fin_agent.ports.market_data import MarketData
from fin_agent.ports.news import News

NY = ZoneInfo("America/New_York")
CALENDAR = FixedCalendar(holidays=[date(2025, 7, 4)], early_closes=[date(2025, 7, 3)])
WEEK = [date(2025, 3, 3) + timedelta(days=n) for n in range(5)]  # Monday to Friday
CENT = Decimal("0.01")


def _scan(day: date) -> datetime:
    return datetime.combine(day, time(9, 0), NY).astimezone(UTC)


def _of(bars: Sequence[Bar], name: Symbol) -> list[Bar]:
    return [b for b in bars if b.symbol == name]


def _aggregate(bars: Sequence[Bar], day: date) -> DailyBar:
    return DailyBar(
        symbol=bars[0].symbol,
        session=day,
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=sum(b.volume for b in bars),
    )


def _wilder_atr(history: Sequence[DailyBar], period: int = 14) -> Decimal:
    ranges = [
        max(b.high - b.low, abs(b.high - a.close), abs(b.low - a.close))
        for a, b in itertools.pairwise(history)
    ]
    atr = sum(ranges[:period], Decimal(0)) / period
    for value in ranges[period:]:
        atr = (atr * (period - 1) + value) / period
    return atr


async def _candidates(market: SimulatedMarket, day: date) -> list[tuple[Symbol, Decimal]]:
    """The default scan of DESIGN.md section 2 (no catalyst rule): top 5 symbols with their ATR."""
    passed: list[tuple[Decimal, int, Symbol, Decimal]] = []
    for name in await market.symbols():
        history = await market.daily_bars(name, day, 30)
        premarket = await market.premarket(name, day, _scan(day))
        if len(history) < 15 or premarket is None or premarket.volume is None:
            continue
        prev_close = history[-1].close
        gap_pct = 100 * (premarket.last - prev_close) / prev_close
        adv20 = sum(b.volume for b in history[-20:]) / len(history[-20:])
        if (
            Decimal(4) <= gap_pct <= Decimal(40)
            and Decimal(2) <= premarket.last <= Decimal(500)
            and premarket.volume >= 50_000
            and adv20 >= 500_000
        ):
            passed.append((gap_pct, premarket.volume, name, _wilder_atr(history)))
    passed.sort(reverse=True)
    return [(name, atr) for _, _, name, atr in passed[:5]]


async def _premarket(
    market: SimulatedMarket, name: Symbol, day: date, until: datetime
) -> Premarket:
    found = await market.premarket(name, day, until)
    assert found is not None
    return found


def _opening_range(bars: Sequence[Bar]) -> tuple[Decimal, Decimal]:
    first = bars[:5]
    assert [b.start.astimezone(NY).time() for b in first][-1] == time(9, 34)
    return max(b.high for b in first), min(b.low for b in first)


def _entry_window(bars: Sequence[Bar]) -> list[Bar]:
    return [b for b in bars if time(9, 35) <= b.start.astimezone(NY).time() < time(10, 30)]


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    return SimulatedMarket(7, CALENDAR)


def test_simulated_market_implements_market_data_and_news() -> None:
    simulated = SimulatedMarket(7, CALENDAR)
    source: MarketData = simulated  # mypy checks the structural match
    news: News = simulated

    assert callable(source.session_bars)
    assert callable(news.headlines)


def test_universe_size_out_of_range_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="universe_size must be between 1 and 10000, got 0"):
        SimulatedMarket(7, CALENDAR, universe_size=0)


@pytest.mark.asyncio
async def test_universe_is_sorted_made_up_tickers(market: SimulatedMarket) -> None:
    names = await market.symbols()

    assert len(names) == 40
    assert list(names) == sorted(set(names))
    assert all(3 <= len(n) <= 4 and n.isalpha() and symbol(n) == n for n in names)


@pytest.mark.asyncio
async def test_universe_size_is_honoured() -> None:
    assert len(await SimulatedMarket(3, CALENDAR, universe_size=12).symbols()) == 12


@pytest.mark.asyncio
async def test_same_seed_gives_the_same_market() -> None:
    one, two = SimulatedMarket(7, CALENDAR), SimulatedMarket(7, CALENDAR)
    names = await one.symbols()
    day = WEEK[2]

    assert await one.symbols() == await two.symbols()
    assert await one.session_bars(day, names) == await two.session_bars(day, names)
    for name in names[:8]:
        assert await one.daily_bars(name, day, 30) == await two.daily_bars(name, day, 30)
        assert await one.premarket(name, day, _scan(day)) == await two.premarket(
            name, day, _scan(day)
        )
        since = _scan(day) - timedelta(days=3)
        assert await one.headlines(name, since, _scan(day)) == await two.headlines(
            name, since, _scan(day)
        )


@pytest.mark.asyncio
async def test_answers_do_not_depend_on_call_order_or_repetition() -> None:
    forward, backward = SimulatedMarket(7, CALENDAR), SimulatedMarket(7, CALENDAR)
    names = list(await forward.symbols())
    late, early = date(2025, 3, 28), WEEK[0]

    late_bars = await forward.session_bars(late, names)
    early_history = await forward.daily_bars(names[0], early, 40)
    early_bars = await forward.session_bars(early, names[:3])
    # The other instance asks in reverse, one symbol at a time, and some questions twice.
    for name in reversed(names[:3]):
        assert await backward.session_bars(early, [name]) == _of(early_bars, name)
    assert await backward.daily_bars(names[0], early, 40) == early_history
    assert await backward.daily_bars(names[0], early, 40) == early_history
    for name in reversed(names):
        assert await backward.session_bars(late, [name]) == _of(late_bars, name)
    assert await backward.session_bars(late, names) == late_bars


@pytest.mark.asyncio
async def test_different_seeds_give_different_markets() -> None:
    one, two = SimulatedMarket(7, CALENDAR), SimulatedMarket(8, CALENDAR)

    assert await one.symbols() != await two.symbols()
    shared_name = (await one.symbols())[0]
    other = SimulatedMarket(8, CALENDAR)
    assert await other.daily_bars(shared_name, WEEK[0], 5) == []  # not in seed 8's universe


@pytest.mark.asyncio
async def test_daily_bar_is_the_aggregate_of_its_session_bars(market: SimulatedMarket) -> None:
    names = await market.symbols()
    for day in [*WEEK, date(2025, 7, 3)]:
        bars = await market.session_bars(day, names)
        next_session = CALENDAR.sessions(day + timedelta(days=1), day + timedelta(days=7))[0]
        for name in names:
            daily = await market.daily_bars(name, next_session.day, 1)
            assert daily == [_aggregate(_of(bars, name), day)], (name, day)


@pytest.mark.asyncio
async def test_bars_are_valid_cent_priced_minutes(market: SimulatedMarket) -> None:
    names = await market.symbols()
    bars = await market.session_bars(WEEK[0], names)

    for bar in bars:
        assert bar.high >= max(bar.open, bar.close, bar.low)
        assert bar.low <= min(bar.open, bar.close)
        assert bar.low > 0
        assert bar.volume >= 0
        assert bar.interval_secs == 60
        assert all(p == p.quantize(CENT) for p in (bar.open, bar.high, bar.low, bar.close))
    assert [(b.start, b.symbol) for b in bars] == sorted((b.start, b.symbol) for b in bars)


@pytest.mark.asyncio
async def test_session_has_390_bars_and_210_on_an_early_close(market: SimulatedMarket) -> None:
    name = (await market.symbols())[5]
    full = await market.session_bars(date(2025, 7, 2), [name])
    early = await market.session_bars(date(2025, 7, 3), [name])

    assert len(full) == 390
    assert len(early) == 210
    assert early[-1].start.astimezone(NY).time() == time(12, 59)


@pytest.mark.parametrize(
    ("day", "first_utc"),
    [(date(2025, 3, 7), time(14, 30)), (date(2025, 3, 10), time(13, 30))],
    ids=["winter", "summer"],
)
@pytest.mark.asyncio
async def test_bar_starts_are_utc_minutes_from_the_open(
    market: SimulatedMarket, day: date, first_utc: time
) -> None:
    name = (await market.symbols())[0]
    bars = await market.session_bars(day, [name])
    open_utc = datetime.combine(day, first_utc, UTC)

    assert bars[0].start == open_utc
    assert bars[0].start.tzinfo is UTC
    assert [b.start for b in bars] == [open_utc + timedelta(minutes=n) for n in range(390)]


@pytest.mark.asyncio
async def test_days_without_a_session_have_no_data(market: SimulatedMarket) -> None:
    name = (await market.symbols())[0]
    for closed in (date(2025, 3, 8), date(2025, 7, 4)):
        assert await market.session_bars(closed, [name]) == []
        assert await market.premarket(name, closed, _scan(closed)) is None


@pytest.mark.asyncio
async def test_unknown_symbols_have_no_data(market: SimulatedMarket) -> None:
    stranger = symbol("QQQQQ")
    day = WEEK[0]

    assert await market.daily_bars(stranger, day, 10) == []
    assert await market.premarket(stranger, day, _scan(day)) is None
    assert await market.session_bars(day, [stranger]) == []
    assert await market.headlines(stranger, _scan(day) - timedelta(days=1), _scan(day)) == []


@pytest.mark.asyncio
async def test_history_is_long_except_for_a_recent_ipo(market: SimulatedMarket) -> None:
    names = await market.symbols()
    lengths = {name: len(await market.daily_bars(name, WEEK[0], 60)) for name in names}
    short = [n for n, length in lengths.items() if length < 15]
    long = [n for n, length in lengths.items() if length >= 30]

    assert 1 <= len(short) <= 2
    assert len(long) >= len(names) - 2
    history = await market.daily_bars(long[0], WEEK[0], 60)
    assert [b.session for b in history] == sorted(b.session for b in history)
    assert history[-1].session == date(2025, 2, 28)


@pytest.mark.asyncio
async def test_some_symbols_trade_too_thinly_for_the_adv_rule(market: SimulatedMarket) -> None:
    adv = {}
    for name in await market.symbols():
        history = await market.daily_bars(name, WEEK[0], 20)
        adv[name] = sum(b.volume for b in history) / max(1, len(history))

    assert any(value < 500_000 for value in adv.values())
    assert any(value > 5_000_000 for value in adv.values())


@pytest.mark.asyncio
async def test_gappers_trade_in_the_premarket_and_quiet_symbols_barely(
    market: SimulatedMarket,
) -> None:
    busy_gappers, gaps_up, gaps_down = 0, 0, 0
    for day in WEEK:
        for name in await market.symbols():
            history = await market.daily_bars(name, day, 1)
            premarket = await market.premarket(name, day, _scan(day))
            if not history or premarket is None:
                continue
            assert premarket.volume is not None
            assert premarket.as_of == _scan(day)
            gap_pct = 100 * (premarket.last - history[-1].close) / history[-1].close
            if abs(gap_pct) >= 4:
                assert premarket.volume >= 5_000, (name, day)
                busy_gappers += premarket.volume >= 50_000
                gaps_up += gap_pct > 0
                gaps_down += gap_pct < 0
            elif abs(gap_pct) < 1:
                assert premarket.volume < 50_000, (name, day)

    assert busy_gappers >= 8
    assert gaps_up > gaps_down > 0


@pytest.mark.asyncio
async def test_premarket_accumulates_from_four_until_the_open(market: SimulatedMarket) -> None:
    day = WEEK[0]
    candidates = await _candidates(market, day)
    name = candidates[0][0]
    prev_close = (await market.daily_bars(name, day, 1))[-1].close
    at = [datetime.combine(day, time(h, m), NY) for h, m in ((3, 0), (7, 0), (9, 0), (11, 0))]

    before, early, scan, after_open = [await _premarket(market, name, day, t) for t in at]

    assert (before.last, before.volume) == (prev_close, 0)
    assert early.volume is not None
    assert scan.volume is not None
    assert after_open.volume is not None
    assert 0 < early.volume <= scan.volume <= after_open.volume
    assert after_open.as_of == datetime.combine(day, time(9, 30), NY).astimezone(UTC)
    opening = (await market.session_bars(day, [name]))[0].open
    assert abs(after_open.last - opening) / opening < Decimal("0.03")


@pytest.mark.asyncio
async def test_headlines_fall_in_the_24_hours_before_a_scan(market: SimulatedMarket) -> None:
    since, until = _scan(WEEK[0]) - timedelta(hours=24), _scan(WEEK[-1])
    scans = [_scan(day) for day in WEEK]
    with_news = 0
    for name in await market.symbols():
        found = await market.headlines(name, since, until)
        with_news += bool(found)
        assert [h.published_at for h in found] == sorted(h.published_at for h in found)
        for headline in found:
            assert headline.symbol == name
            assert since <= headline.published_at < until
            assert headline.published_at.tzinfo is not None
            assert any(s - timedelta(hours=24) <= headline.published_at < s for s in scans)
        narrow = await market.headlines(name, scans[1], scans[2])
        assert narrow == [h for h in found if scans[1] <= h.published_at < scans[2]]

    assert with_news >= 5


@pytest.mark.asyncio
async def test_some_gappers_have_a_catalyst_and_some_do_not(market: SimulatedMarket) -> None:
    with_news, without_news, quiet_with_news = 0, 0, 0
    for day in WEEK:
        for name in await market.symbols():
            history = await market.daily_bars(name, day, 1)
            premarket = await market.premarket(name, day, _scan(day))
            if not history or premarket is None:
                continue
            gap_pct = 100 * (premarket.last - history[-1].close) / history[-1].close
            news = await market.headlines(name, _scan(day) - timedelta(hours=24), _scan(day))
            if abs(gap_pct) >= 4:
                with_news += bool(news)
                without_news += not news
            elif abs(gap_pct) < 1:
                quiet_with_news += bool(news)

    assert with_news >= 3
    assert without_news >= 1
    assert quiet_with_news >= 1


@pytest.mark.asyncio
async def test_every_scan_rule_rejects_someone_within_six_weeks(market: SimulatedMarket) -> None:
    failures: set[str] = set()
    for session in CALENDAR.sessions(date(2025, 2, 3), date(2025, 3, 14)):
        day = session.day
        for name in await market.symbols():
            history = await market.daily_bars(name, day, 20)
            premarket = await market.premarket(name, day, _scan(day))
            if len(history) < 15 or premarket is None or premarket.volume is None:
                failures.add("history")
                continue
            gap_pct = 100 * (premarket.last - history[-1].close) / history[-1].close
            adv20 = sum(b.volume for b in history) / len(history)
            if gap_pct <= -4:
                failures.add("gap_down")
            elif 2 <= gap_pct < 4:
                failures.add("gap_too_small")
            elif gap_pct > 40:
                failures.add("gap_too_large")
            elif gap_pct >= 4 and premarket.last < 2:
                failures.add("price")
            elif gap_pct >= 4 and premarket.volume < 50_000:
                failures.add("pm_volume")
            elif gap_pct >= 4 and adv20 < 500_000:
                failures.add("adv")

    assert failures == {
        "history",
        "gap_down",
        "gap_too_small",
        "gap_too_large",
        "price",
        "pm_volume",
        "adv",
    }


@pytest.mark.asyncio
async def test_intraday_volume_is_u_shaped(market: SimulatedMarket) -> None:
    names = await market.symbols()
    minute_volume = [0] * 390
    for day in WEEK:
        for bar in await market.session_bars(day, names):
            start = bar.start.astimezone(NY)
            minute_volume[(start.hour - 9) * 60 + start.minute - 30] += bar.volume

    first, midday, last = minute_volume[:30], minute_volume[180:210], minute_volume[-30:]
    assert sum(first) > 1.5 * sum(midday)
    assert sum(last) > 1.2 * sum(midday)


@pytest.mark.asyncio
async def test_some_days_have_a_halt_like_flat_stretch(market: SimulatedMarket) -> None:
    names = await market.symbols()
    flat_runs = 0
    for day in WEEK:
        bars = await market.session_bars(day, names)
        for name in names:
            run = 0
            for bar in _of(bars, name):
                flat = bar.open == bar.high == bar.low == bar.close and bar.volume == 0
                run = run + 1 if flat else 0
                flat_runs += run == 4

    assert flat_runs >= 1


@pytest.mark.asyncio
async def test_a_whole_day_is_built_once_and_then_served_from_cache(
    market: SimulatedMarket,
) -> None:
    names = await market.symbols()
    day = date(2025, 3, 12)

    first = await market.session_bars(day, names)
    again = await market.session_bars(day, names)

    assert len(first) == 40 * 390
    assert all(a is b for a, b in zip(first, again, strict=True))


@pytest.mark.asyncio
async def test_default_strategy_finds_triggered_candidates_most_days(
    market: SimulatedMarket,
) -> None:
    triggered_per_day = []
    for day in WEEK:
        candidates = await _candidates(market, day)
        bars = await market.session_bars(day, [name for name, _ in candidates])
        triggered = 0
        for name, _ in candidates:
            own = _of(bars, name)
            or_high, _ = _opening_range(own)
            triggered += any(b.high >= or_high + CENT for b in _entry_window(own))
        triggered_per_day.append(triggered)

    assert sum(triggered_per_day) >= 3
    assert sum(1 for count in triggered_per_day if count > 0) >= 3


@pytest.mark.asyncio
async def test_default_strategy_meets_targets_stops_and_the_flatten(
    market: SimulatedMarket,
) -> None:
    outcomes: set[str] = set()
    for day in WEEK:
        candidates = await _candidates(market, day)
        bars = await market.session_bars(day, [name for name, _ in candidates])
        for name, atr in candidates:
            outcomes.add(_long_trade_outcome(_of(bars, name), atr))

    assert {"target", "stop", "flatten"} <= outcomes


def _long_trade_outcome(bars: Sequence[Bar], atr: Decimal) -> str:
    """The bar-mode rules of DESIGN.md section 2.4 with no costs, for one long plan."""
    or_high, or_low = _opening_range(bars)
    entry = or_high + CENT
    stop = max(or_low - CENT, entry - atr / 2)
    target = entry + 2 * (entry - stop)
    window = _entry_window(bars)
    fill = next((b for b in window if b.high >= entry), None)
    if fill is None:
        return "expired"
    if fill.low <= stop:
        return "stop"
    for bar in bars[bars.index(fill) + 1 :]:
        if bar.start.astimezone(NY).time() >= time(15, 55):
            return "flatten"
        if bar.low <= stop:
            return "stop"
        if bar.high >= target:
            return "target"
    return "flatten"


@pytest.mark.asyncio
async def test_premarket_bars_add_up_to_the_premarket_figures_of_each_gapper() -> None:
    market = SimulatedMarket(seed=7, calendar=CALENDAR, universe_size=40)
    day = date(2025, 3, 12)
    open_at = datetime.combine(day, time(9, 30), NY)

    gappers = market.gappers(day)

    assert gappers
    assert market.gappers(date(2025, 3, 15)) == ()  # a Saturday
    for name in gappers:
        bars = market.premarket_bars(name, day)
        figures = await market.premarket(name, day, open_at)
        assert figures is not None
        assert all(b.start.astimezone(NY).time() >= time(4, 0) and b.end <= open_at for b in bars)
        assert sum(b.volume for b in bars) == figures.volume
        assert bars[-1].close == figures.last
