"""BarAggregator: exact 1-minute OHLCV from trades, minutes closed by later trades or the clock,
late trades counted, conditions excluded on request; and the recorded AIG prints against Lean's
own minute bars."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.live.bar_aggregator import BarAggregator, ClosedMinute, Tick, tick_of
from fin_agent.domain.errors import ConfigError, DataError
from fin_agent.domain.values import Symbol, Trade

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # 09:30 ET
T0_MS = int(T0.timestamp() * 1000)


def at(seconds: float) -> int:
    """Milliseconds since the epoch, `seconds` after 09:30 ET on 2024-01-02."""
    return T0_MS + round(seconds * 1000)


def tick(symbol: str, price: float, seconds: float, size: int, *codes: str) -> Tick:
    return Tick(symbol, price, at(seconds), size, codes)


def only(minutes: Sequence[ClosedMinute]) -> ClosedMinute:
    assert len(minutes) == 1, minutes
    return minutes[0]


def test_bar_is_exact_ohlcv_stamped_at_its_utc_start() -> None:
    agg = BarAggregator(lateness_secs=0)
    agg.add(
        [
            tick("AAPL", 187.3, 0.5, 100),
            tick("AAPL", 187.65, 10, 50),
            tick("AAPL", 186.98, 20, 25),
            tick("AAPL", 187.41, 59.999, 10),
        ]
    )

    minute = only(list(agg.add([tick("AAPL", 187.5, 60, 1)])))

    bar = minute.bars[0]
    assert minute.start == T0
    assert len(minute.bars) == 1
    assert (bar.symbol, bar.start, bar.interval_secs) == ("AAPL", T0, 60)
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal("187.3"),
        Decimal("187.65"),
        Decimal("186.98"),
        Decimal("187.41"),
    )
    assert bar.volume == 185
    assert minute.end == T0 + timedelta(minutes=1)


def test_prices_come_back_as_the_decimal_text_that_was_sent() -> None:
    agg = BarAggregator(lateness_secs=0)
    agg.add([tick("X", 0.1 + 0.2, 0, 1), tick("X", 1234.5678, 1, 1), tick("X", 0.0001, 2, 1)])

    bar = only(agg.close_all()).bars[0]

    assert bar.open == Decimal("0.30000000000000004")  # what 0.1 + 0.2 is, written shortest
    assert (bar.high, bar.low) == (Decimal("1234.5678"), Decimal("0.0001"))


def test_a_later_trade_of_any_symbol_closes_the_minute_for_every_symbol() -> None:
    agg = BarAggregator(lateness_secs=0)
    assert not agg.add([tick("MSFT", 370.1, 5, 10), tick("AAPL", 187.3, 30, 100)])

    minute = only(list(agg.add([tick("AAPL", 187.4, 61, 5)])))

    assert [b.symbol for b in minute.bars] == ["AAPL", "MSFT"]  # sorted, one bar each
    assert [b.volume for b in minute.bars] == [100, 10]
    assert agg.stats.open_bars == 1  # AAPL's second minute


def test_open_and_close_follow_trade_times_within_the_minute() -> None:
    agg = BarAggregator(lateness_secs=0)
    agg.add([tick("A", 10.0, 30, 1), tick("A", 11.0, 50, 1), tick("A", 9.0, 1, 1)])
    agg.add([tick("A", 10.5, 40, 1)])  # between: neither first nor last

    bar = only(agg.close_all()).bars[0]

    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal(9),
        Decimal(11),
        Decimal(9),
        Decimal(11),
    )
    assert bar.volume == 4


def test_same_millisecond_trades_keep_arrival_order() -> None:
    agg = BarAggregator(lateness_secs=0)
    agg.add([tick("A", 10.0, 1, 1), tick("A", 10.2, 1, 1), tick("A", 10.1, 1, 1)])

    bar = only(agg.close_all()).bars[0]

    assert (bar.open, bar.close) == (Decimal("10.0"), Decimal("10.1"))


def test_a_trade_of_a_closed_minute_is_late_counted_and_dropped() -> None:
    agg = BarAggregator(lateness_secs=0)
    agg.add([tick("A", 10.0, 1, 100)])
    first = only(list(agg.add([tick("A", 10.1, 61, 1)])))

    assert not agg.add([tick("A", 99.0, 59, 5), tick("B", 5.0, 2, 5)])

    assert first.bars[0].high == Decimal("10.0")
    assert agg.stats.late == 2
    assert agg.stats.trades == 2
    assert only(agg.close_all()).bars[0].volume == 1


def test_an_earlier_minute_still_open_takes_its_out_of_order_trade() -> None:
    agg = BarAggregator(lateness_secs=5)
    agg.add([tick("A", 10.0, 10, 1), tick("A", 10.5, 62, 1)])  # A moves on to minute 2

    closed = agg.add([tick("A", 9.5, 58, 7), tick("A", 10.6, 66, 1)])  # 66 s: past 60 + 5

    minute = only(list(closed))
    assert minute.start == T0
    bar = minute.bars[0]
    assert (bar.open, bar.low, bar.close, bar.volume) == (
        Decimal(10),
        Decimal("9.5"),
        Decimal("9.5"),
        8,
    )
    assert agg.stats.late == 0


def test_lateness_holds_the_minute_until_trade_time_passes_its_end_plus_lateness() -> None:
    agg = BarAggregator(lateness_secs=2)
    agg.add([tick("A", 10.0, 30, 1)])

    assert not agg.add([tick("B", 20.0, 61.9, 1)])
    assert not agg.add([tick("A", 10.2, 59.5, 1)])  # still on time
    minute = only(list(agg.add([tick("B", 20.1, 62.0, 1)])))

    assert [b.symbol for b in minute.bars] == ["A"]
    assert minute.bars[0].volume == 2


def test_by_default_trades_out_of_order_across_frames_land_in_their_own_minute() -> None:
    agg = BarAggregator()  # the default lateness: 2 s of trade time
    agg.add([tick("A", 10.0, 59.8, 100)])
    agg.add([tick("B", 20.0, 60.1, 50)])  # a frame of the next minute arrives first...
    agg.add([tick("A", 10.5, 59.7, 200)])  # ...then a trade 0.4 s older, of the minute before
    minute = only(list(agg.add([tick("B", 20.1, 62.0, 1)])))

    assert [(b.symbol, b.volume, b.close) for b in minute.bars] == [("A", 300, Decimal("10.0"))]
    assert agg.stats.late == 0


def test_flush_closes_minutes_that_ended_by_now_and_no_others() -> None:
    agg = BarAggregator(lateness_secs=0)
    agg.add([tick("A", 10.0, 30, 1)])

    assert not agg.flush(T0 + timedelta(seconds=59.999))
    minute = only(list(agg.flush(T0 + timedelta(seconds=60))))
    assert minute.start == T0
    assert not agg.flush(T0 + timedelta(minutes=5))  # nothing left
    agg.add([tick("A", 10.0, 59, 1)])
    assert agg.stats.late == 1


def test_flush_refuses_a_naive_time() -> None:
    with pytest.raises(DataError, match="timezone-aware UTC"):
        BarAggregator(lateness_secs=0).flush(datetime(2024, 1, 2, 14, 31))  # noqa: DTZ001 - the case under test


def test_minutes_close_in_order_across_a_gap() -> None:
    agg = BarAggregator(lateness_secs=0)
    agg.add([tick("A", 10.0, 1, 1)])

    closed = [*agg.add([tick("B", 5.0, 70, 1), tick("A", 10.5, 600, 1)])]

    assert [m.start for m in closed] == [T0, T0 + timedelta(minutes=1)]
    assert [[b.symbol for b in m.bars] for m in closed] == [["A"], ["B"]]


def test_excluded_condition_codes_are_left_out_and_counted() -> None:
    agg = BarAggregator(exclude_conditions={"4000000", "1000000"})
    agg.add(
        [
            tick("AIG", 49.0, 1, 100, "1"),
            tick("AIG", 49.5, 2, 1200, "4000000"),  # official open: not a print of its own
            tick("AIG", 48.0, 3, 40, "20000020"),
            tick("AIG", 48.5, 4, 7),  # no codes: kept
        ]
    )

    bar = only(agg.close_all()).bars[0]

    assert (bar.high, bar.low, bar.volume) == (Decimal(49), Decimal(48), 147)
    assert agg.stats.excluded == 1


def test_domain_trades_aggregate_like_ticks() -> None:
    trades = [
        Trade(symbol=Symbol("AAPL"), price=Decimal("187.30"), size=10, at=T0),
        Trade(symbol=Symbol("AAPL"), price=Decimal("187.35"), size=5, at=T0 + timedelta(seconds=3)),
    ]
    agg = BarAggregator(lateness_secs=0)
    agg.add_trades(trades)

    bar = only(agg.close_all()).bars[0]

    assert (bar.open, bar.close, bar.volume) == (Decimal("187.30"), Decimal("187.35"), 15)
    assert tick_of(trades[1]).trade() == trades[1]


def test_stats_count_what_happened() -> None:
    agg = BarAggregator(lateness_secs=0)
    agg.add([tick("A", 1.0, 1, 1), tick("B", 2.0, 2, 1)])
    agg.add([tick("A", 1.0, 61, 1)])

    stats = agg.stats

    assert (stats.trades, stats.bars, stats.minutes, stats.open_bars) == (3, 2, 1, 1)
    assert stats.closed_through == T0 + timedelta(minutes=1)


# -- recorded data --------------------------------------------------------------------------------

TICKS = "lean_tick_trades_AIG_2013-10-07_to_11.parquet"
MINUTES = "lean_minute_ext_hours_AAPL_AIG_FOXA_GOOG_NWSA_SHY_TWX.csv.gz"
DAYS = [date(2013, 10, d) for d in (7, 8, 9, 10, 11)]


def _lean_minute_volume(folder: Path) -> dict[date, int]:
    volume: dict[date, int] = defaultdict(int)
    with gzip.open(folder / MINUTES, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["symbol"] == "AIG":
                volume[datetime.fromisoformat(row["datetime"]).date()] += int(row["volume"])
    return volume


T = TypeVar("T")


def no_nulls(column: list[T | None]) -> list[T]:
    """A column of the recorded file, which has no nulls."""
    assert None not in column
    return [value for value in column if value is not None]


def _aig_ticks(folder: Path) -> list[Tick]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(folder / TICKS)
    stamps = table["datetime"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
    return [
        Tick("AIG", price, at_ms, size, (code,))
        for at_ms, price, size, code in zip(
            no_nulls(stamps),
            no_nulls(table["price"].to_pylist()),
            no_nulls(table["size"].to_pylist()),
            no_nulls(table["condition"].to_pylist()),
            strict=True,
        )
    ]


@pytest.mark.data
@pytest.mark.parametrize(
    ("excluded", "tolerance_pct"),
    [((), 1.0), (("4000000", "1000000"), 1.0)],
    ids=["all prints", "without official open and close"],
)
def test_aig_ticks_give_lean_minute_volume_within_one_percent_each_day(
    shared_data: Path, excluded: tuple[str, ...], tolerance_pct: float
) -> None:
    expected = _lean_minute_volume(shared_data)
    ticks = _aig_ticks(shared_data)
    agg = BarAggregator(exclude_conditions=excluded)

    minutes = [*agg.add(ticks), *agg.close_all()]

    eastern = ZoneInfo("America/New_York")
    got: dict[date, int] = defaultdict(int)
    for minute in minutes:
        got[minute.start.astimezone(eastern).date()] += minute.bars[0].volume
    for day in DAYS:
        off_pct = 100 * abs(got[day] - expected[day]) / expected[day]
        assert off_pct <= tolerance_pct, f"{day}: {got[day]} vs Lean {expected[day]}"
    assert agg.stats.trades + agg.stats.excluded == len(ticks) == 206_337
    assert agg.stats.late == 0  # the prints are in time order


@pytest.mark.data
def test_aig_bars_from_ticks_are_consistent_and_cover_every_lean_minute(shared_data: Path) -> None:
    ticks = _aig_ticks(shared_data)
    agg = BarAggregator(lateness_secs=0)

    minutes = [*agg.add(ticks[:100_000]), *agg.add(ticks[100_000:]), *agg.close_all()]

    starts = [m.start for m in minutes]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)
    for minute in minutes:
        bar = minute.bars[0]
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    assert sum(m.bars[0].volume for m in minutes) == sum(t.size for t in ticks)
    with gzip.open(shared_data / MINUTES, "rt", newline="") as handle:
        lean = {
            datetime.fromisoformat(row["datetime"]).astimezone(UTC)
            for row in csv.DictReader(handle)
            if row["symbol"] == "AIG" and row["datetime"] >= "2013-10-07"
        }
    missing = lean - set(starts)
    assert len(missing) <= 3, sorted(missing)  # Lean moves some closing-cross minutes


def test_negative_lateness_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="bar lateness_secs must be 0 or more, got -1"):
        BarAggregator(lateness_secs=-1)
