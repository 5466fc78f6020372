"""Bar files and `ReplayMarketData` on the real recordings in ../shared/data, quirks included."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.files.bar_files import (
    BarFileSpec,
    BarKind,
    BarStamp,
    DropReason,
    read_bar_file,
)
from fin_agent.adapters.files.replay import ReplayMarketData, load_replay
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import symbol

pytestmark = pytest.mark.data

NY = ZoneInfo("America/New_York")
LEAN_MINUTES = "lean_minute_ext_hours_AAPL_AIG_FOXA_GOOG_NWSA_SHY_TWX.csv.gz"


@pytest.fixture(scope="module")
def data(shared_data: Path) -> Path:
    """The shared data folder (see tests/conftest.py: skipped when absent, fails in CI)."""
    return shared_data


def et(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), NY)


@pytest.mark.asyncio
async def test_av2019_minute_bar_end_stamps_become_utc_starts(data: Path) -> None:
    loaded = load_replay(
        [data / "av2019_daily_24sym.csv.gz", data / "av2019_1min_24sym.csv.gz"], BarFileSpec()
    )
    market = loaded.market_data
    aapl, day = symbol("AAPL"), date(2019, 2, 11)

    bars = await market.session_bars(day, [aapl])
    scan = await market.premarket(aapl, day, et(day, 9, 0))
    history = await market.daily_bars(aapl, day, 20)

    minutes = loaded.files[1]
    assert (minutes.kind, minutes.bar_stamp, minutes.interval_secs) == (
        BarKind.INTRADAY,
        BarStamp.END,
        60,
    )
    assert bars[0].start == datetime(2019, 2, 11, 14, 30, tzinfo=UTC)
    assert bars[-1].start == datetime(2019, 2, 11, 20, 59, tzinfo=UTC)
    assert (bars[0].open, bars[1].close) == (Decimal("171.14"), Decimal("170.7701"))
    assert market.sessions() == [date(2019, 2, d) for d in (11, 12, 13, 14, 15)]
    assert len(await market.symbols()) == 24
    assert scan is not None
    assert scan.volume is None  # regular-hours data: the day's open stands in for pre-market
    assert scan.last == (await market.daily_bars(aapl, date(2019, 2, 12), 1))[0].open
    assert len(history) == 20
    assert history[-1].session == date(2019, 2, 8)
    assert loaded.dropped == ()


def test_av2019_fifteen_minute_bars_are_inferred(data: Path) -> None:
    loaded = read_bar_file(data / "av2019_15min_24sym.csv.gz")

    assert (loaded.interval_secs, loaded.bar_stamp) == (900, BarStamp.END)
    assert loaded.intraday[0].start == datetime(2019, 1, 4, 14, 30, tzinfo=UTC)


@pytest.mark.asyncio
async def test_ninjatrader_spy_naive_utc_bar_end_is_0400_et(data: Path) -> None:
    spec = BarFileSpec(timezone="UTC", symbol="SPY")

    loaded = load_replay([data / "ninjatrader_spy_1min_ext_2011-01_UTC_barend.csv"], spec)
    market, spy, day = loaded.market_data, symbol("SPY"), date(2011, 1, 3)

    first = loaded.files[0].intraday[0]
    assert loaded.files[0].bar_stamp is BarStamp.END
    assert (first.start, first.end) == (et(day, 4, 0), et(day, 4, 1))
    assert first.open == Decimal("126.35")
    scan = await market.premarket(spy, day, et(day, 9, 0))
    assert scan is not None
    assert scan.volume is not None
    assert scan.volume > 0
    regular = await market.session_bars(day, [spy])
    assert regular[0].start == et(day, 9, 30)
    assert regular[-1].start == et(day, 15, 59)


async def aapl_split_figures(market: ReplayMarketData) -> tuple[Decimal, Decimal, Decimal]:
    aapl, day = symbol("AAPL"), date(2014, 6, 9)
    previous = (await market.daily_bars(aapl, day, 1))[0]
    scan = await market.premarket(aapl, day, et(day, 9, 0))
    assert scan is not None
    opening = (await market.session_bars(day, [aapl]))[0]
    return previous.close, scan.last, opening.open


@pytest.mark.asyncio
async def test_lean_aapl_split_is_adjusted_with_factor_files(data: Path) -> None:
    spec = BarFileSpec(factors_dir=data / "lean_factor_files")

    loaded = load_replay([data / LEAN_MINUTES], spec)
    previous, pm_last, opening = await aapl_split_figures(loaded.market_data)

    assert loaded.files[0].bar_stamp is BarStamp.START
    assert previous == pytest.approx(Decimal("645.57") / 7, abs=Decimal("0.0001"))
    assert abs(pm_last / previous - 1) < Decimal("0.02")
    assert abs(opening / previous - 1) < Decimal("0.02")
    assert set(loaded.unadjusted_symbols) == {symbol("FOXA"), symbol("SHY")}


@pytest.mark.asyncio
async def test_lean_aapl_split_shows_as_a_fake_gap_without_factors(data: Path) -> None:
    loaded = load_replay([data / LEAN_MINUTES], BarFileSpec())
    previous, pm_last, _ = await aapl_split_figures(loaded.market_data)

    assert previous == Decimal("645.57")
    assert Decimal("-0.86") < pm_last / previous - 1 < Decimal("-0.84")


@pytest.mark.asyncio
async def test_lean_goog_half_day_ends_the_session_at_1300(data: Path) -> None:
    market = load_replay([data / LEAN_MINUTES], BarFileSpec()).market_data
    goog, day = symbol("GOOG"), date(2015, 12, 24)

    bars = await market.session_bars(day, [goog])
    next_day = await market.daily_bars(goog, date(2015, 12, 28), 1)

    assert bars[0].start == et(day, 9, 30)
    assert bars[-1].start == et(day, 12, 59)
    assert market.session_close(day) == et(day, 13, 0)
    assert market.session_close(date(2015, 12, 23)) == et(date(2015, 12, 23), 16, 0)
    assert next_day[0].close == bars[-1].close


@pytest.mark.asyncio
async def test_watstreet_inda_sparse_minutes_are_kept_without_invented_bars(data: Path) -> None:
    spec = BarFileSpec(timezone="UTC", symbol="INDA")

    loaded = load_replay([data / "watstreet_INDA_1min_ext_UTC_2023-2025.csv.gz"], spec)

    (file,) = loaded.files
    bars = file.intraday
    assert (file.bar_stamp, file.interval_secs, loaded.dropped) == (BarStamp.START, 60, ())
    assert len(bars) == 66_269  # one bar per row of the file
    assert [b.start for b in bars[:2]] == [
        datetime(2023, 7, 10, 10, 10, tzinfo=UTC),  # 06:10 ET: pre-market, then nothing for 1 h
        datetime(2023, 7, 10, 11, 10, tzinfo=UTC),
    ]
    gaps = sum(1 for a, b in pairwise(bars) if b.start - a.start > timedelta(minutes=1))
    assert gaps > 1_000
    regular = await loaded.market_data.session_bars(date(2023, 7, 10), [symbol("INDA")])
    assert 0 < len(regular) < 390
    assert len({b.start for b in regular}) == len(regular)


def test_sp500_bad_rows_are_dropped_and_reported(data: Path) -> None:
    loaded = read_bar_file(data / "sp500_daily_2013-02-08_2015-12-31.parquet")

    inconsistent = {
        (r.symbol, r.day) for r in loaded.dropped if r.reason is DropReason.INCONSISTENT_OHLC
    }
    missing = {(r.symbol, r.day) for r in loaded.dropped if r.reason is DropReason.MISSING_VALUE}
    assert loaded.kind is BarKind.DAILY
    assert len(loaded.dropped) == 14
    assert {("AOS", date(2014, 5, 19)), ("CHD", date(2014, 5, 19)), ("SPG", date(2014, 5, 28))} <= (
        inconsistent
    )
    assert len(inconsistent) == 8
    assert ("REGN", date(2015, 6, 9)) in missing
    kept = {(b.symbol, b.session) for b in loaded.daily}
    assert not kept & (inconsistent | missing)
    assert len(loaded.daily) == 354_554 - 14


def test_lean_tick_trades_are_not_a_bar_file(data: Path) -> None:
    with pytest.raises(DataError, match="trade prints, with price and size: aggregate the trades"):
        read_bar_file(data / "lean_tick_trades_AIG_2013-10-07_to_11.parquet")


def test_lean_second_bars_load_as_one_second_bars(data: Path) -> None:
    loaded = read_bar_file(data / "lean_second_bars_AIG_2013-10.parquet")

    assert (loaded.kind, loaded.interval_secs, loaded.bar_stamp) == (
        BarKind.INTRADAY,
        1,
        BarStamp.START,
    )
