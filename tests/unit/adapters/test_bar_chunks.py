"""Bar files read a few row groups at a time: the replay market built from a Parquet file of one
row group per day equals the one built from the same rows read whole, and holds one day's minute
bars at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fin_agent.adapters.files.bar_files import BarFileSpec, BarKind, BarStamp
from fin_agent.adapters.files.replay import ReplayLoad, load_replay
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import symbol

NY = ZoneInfo("America/New_York")
DAYS = (date(2019, 2, 11), date(2019, 2, 12), date(2019, 2, 13))
NAMES = ("AAPL", "MSFT", "BRK_B")
START = BarFileSpec(bar_stamp=BarStamp.START)  # pre-market bars: 04:00 and 20:00 tell nothing
HEADER = ("symbol", "datetime", "open", "high", "low", "close", "volume")
Row = tuple[str, str, float, float, float, float, float]


def minutes(day: date, first: time, count: int, name: str, price: float) -> list[Row]:
    """`count` consecutive naive 1-minute bars from `first`, stamped at their start."""
    start = datetime.combine(day, first)
    rows: list[Row] = []
    for i in range(count):
        p = round(price + i * 0.01, 2)
        stamp = f"{start + timedelta(minutes=i):%Y-%m-%d %H:%M:%S}"
        rows.append((name, stamp, p, p + 0.05, p - 0.05, p, 100.0 + i))
    return rows


def day_rows(day: date, number: int) -> list[Row]:
    """A day of bars: AAPL with a pre-market from the second day on (it starts part-way through
    the file), MSFT and BRK_B (a class share) without; one bad symbol, one inconsistent bar and
    one repeated stamp per day."""
    rows: list[Row] = []
    for offset, name in enumerate(NAMES):
        price = 50.0 + 10 * offset + number
        if name == "AAPL" and number:
            rows += minutes(day, time(8, 0), 30, name, price - 1)
        rows += minutes(day, time(9, 30), 390, name, price)
    rows.append(("BAD/SYM", f"{day} 10:00:00", 1.0, 1.0, 1.0, 1.0, 1.0))
    rows.append(("MSFT", f"{day} 10:01:30", 5.0, 1.0, 1.0, 1.0, 1.0))
    rows.append(rows[-4])  # MSFT's 15:59 bar again: a duplicate
    return rows


def table(rows: Sequence[Row]) -> pa.Table:
    return pa.table({name: [r[i] for r in rows] for i, name in enumerate(HEADER)})


def write_by_day(path: Path, days: Sequence[Sequence[Row]]) -> Path:
    """A Parquet file of one row group per day."""
    with pq.ParquetWriter(path, table(days[0]).schema) as writer:
        for rows in days:
            writer.write_table(table(rows))
    return path


def write_csv(path: Path, rows: Sequence[Row]) -> Path:
    lines = [",".join(HEADER), *(",".join(str(v) for v in r) for r in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def by_day(paths: Sequence[Path], spec: BarFileSpec | None = None) -> ReplayLoad:
    """Read so that every row group is a chunk of its own and none is kept whole."""
    return load_replay(paths, spec or BarFileSpec(), resident_rows=0, chunk_rows=1)


async def observed(loaded: ReplayLoad) -> list[object]:
    """Everything a backtest can ask the market, day by day, and what the load reported."""
    market = loaded.market_data
    names = list(await market.symbols())
    dropped = [(r.row, r.symbol, r.day, r.reason) for r in loaded.dropped]
    found: list[object] = [names, market.sessions(), dropped, loaded.unadjusted_symbols]
    found += [(f.kind, f.interval_secs, f.bar_stamp) for f in loaded.files]
    for day in DAYS:
        found.append(market.session_close(day))
        for hour, minute in ((7, 0), (8, 10), (9, 0)):
            until = datetime.combine(day, time(hour, minute), NY)
            found += [await market.premarket(name, day, until) for name in names]
        found += [await market.daily_bars(name, day + timedelta(days=1), 5) for name in names]
        found.append(await market.session_bars(day, names))
    return found


async def market_names(loaded: ReplayLoad) -> list[str]:
    return list(await loaded.market_data.symbols())


@pytest.mark.asyncio
async def test_a_file_read_by_day_gives_the_market_and_warnings_of_the_file_read_whole(
    tmp_path: Path,
) -> None:
    days = [day_rows(day, n) for n, day in enumerate(DAYS)]
    parquet = write_by_day(tmp_path / "m.parquet", days)
    csv = write_csv(tmp_path / "m.csv", [r for rows in days for r in rows])

    chunked = await observed(by_day([parquet], START))
    whole = await observed(load_replay([parquet], START))
    as_csv = await observed(load_replay([csv], START))

    assert chunked == whole == as_csv
    assert chunked[2]  # the dropped rows
    assert symbol("BRK.B") in await market_names(by_day([parquet], START))


@pytest.mark.asyncio
async def test_a_day_s_minute_bars_are_read_when_asked_and_the_previous_day_s_freed(
    tmp_path: Path,
) -> None:
    parquet = write_by_day(tmp_path / "m.parquet", [day_rows(day, n) for n, day in enumerate(DAYS)])
    market = by_day([parquet], START).market_data
    whole = load_replay([parquet], START).market_data
    first, second, third = DAYS
    names = [symbol(n) for n in ("AAPL", "MSFT")]

    assert not market.loaded_days
    bars = await market.session_bars(second, names)
    assert market.loaded_days == (second,)
    await market.premarket(symbol("AAPL"), third, datetime.combine(third, time(9, 0), NY))
    assert market.loaded_days == (third,)
    assert bars == await whole.session_bars(second, names)
    assert await market.session_bars(first, names) == await whole.session_bars(first, names)
    assert market.loaded_days == (first,)
    assert market.chunk_reads == 3
    assert whole.loaded_days == DAYS


def test_decisions_hold_for_the_whole_file_not_each_row_group(tmp_path: Path) -> None:
    # The second day alone has neither 09:30 nor 16:00 bars (start or end stamps?) and one
    # symbol's bars are two minutes apart: decided over the file, as when read whole.
    first = minutes(DAYS[0], time(9, 30), 390, "AAPL", 10) + minutes(
        DAYS[0], time(9, 30), 390, "MSFT", 20
    )
    second = minutes(DAYS[1], time(10, 0), 300, "AAPL", 10)[::2]
    path = write_by_day(tmp_path / "m.parquet", [first, second])

    chunked = by_day([path])
    whole = load_replay([path], BarFileSpec())

    assert [(f.kind, f.interval_secs, f.bar_stamp) for f in chunked.files] == [
        (BarKind.INTRADAY, 60, BarStamp.START)
    ]
    assert chunked.market_data.sessions() == whole.market_data.sessions() == list(DAYS[:2])


def test_row_groups_with_stamps_in_different_forms_are_refused(tmp_path: Path) -> None:
    dates = [("AAPL", f"{day}", 10.0, 11.0, 9.0, 10.0, 100.0) for day in DAYS]
    times = minutes(DAYS[0], time(9, 30), 30, "AAPL", 10)
    path = write_by_day(tmp_path / "m.parquet", [dates, times])

    with pytest.raises(DataError, match=r"m.parquet: its row groups hold time stamps in different "
                       r"forms \(date, naive\): write one form"):  # fmt: skip
        by_day([path])


def test_utc_stamps_declared_new_york_are_refused_when_read_by_day(tmp_path: Path) -> None:
    days = [minutes(day, time(14, 30), 390, "AAPL", 10) for day in DAYS]
    path = write_by_day(tmp_path / "utc.parquet", days)

    with pytest.raises(DataError, match=r"read as America/New_York do not fit .* pass --tz UTC"):
        by_day([path])
    assert by_day([path], BarFileSpec(timezone="UTC")).market_data.sessions() == list(DAYS)


def test_the_same_bars_in_two_files_read_by_day_are_refused(tmp_path: Path) -> None:
    days = [minutes(day, time(9, 30), 390, "AAPL", 10) for day in DAYS]
    one = write_by_day(tmp_path / "one.parquet", days)
    two = write_by_day(tmp_path / "two.parquet", days)

    with pytest.raises(DataError, match=r"two bars of AAPL start at .*: pass each file once"):
        by_day([one, two])
