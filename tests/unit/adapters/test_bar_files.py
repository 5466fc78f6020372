"""Bar files and the replay built from them, on small files written by each test."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fin_agent.adapters.files.bar_files import (
    BarFileSpec,
    BarKind,
    BarStamp,
    DroppedRow,
    DropReason,
    describe_dropped,
    read_bar_file,
    read_bar_files,
)
from fin_agent.adapters.files.replay import ReplayMarketData, load_replay
from fin_agent.adapters.files.split_factors import read_factor_file
from fin_agent.domain.errors import ConfigError, DataError
from fin_agent.domain.values import Bar, DailyBar, symbol

NY = ZoneInfo("America/New_York")
AAPL, MSFT = symbol("AAPL"), symbol("MSFT")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def minute_rows(
    day: date, first: time, count: int, name: str = "AAPL", price: float = 100.0
) -> list[str]:
    """CSV rows `symbol,datetime,o,h,l,c,v` of `count` consecutive naive minutes from `first`."""
    start = datetime.combine(day, first)
    rows = []
    for i in range(count):
        stamp = start + timedelta(minutes=i)
        p = price + i * 0.01
        rows.append(
            f"{name},{stamp:%Y-%m-%d %H:%M:%S},{p:.2f},{p + 0.05:.2f},{p - 0.05:.2f},{p:.2f},100"
        )
    return rows


def csv_text(rows: list[str], header: str = "symbol,datetime,open,high,low,close,volume") -> str:
    return "\n".join([header, *rows]) + "\n"


def session_minutes(day: date, *, stamp: str, name: str = "AAPL") -> list[str]:
    """A full regular session of 1-minute bars, stamped at their start (09:30..15:59) or end."""
    first = time(9, 30) if stamp == "start" else time(9, 31)
    return minute_rows(day, first, 390, name)


# --- columns -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "symbol,datetime,open,high,low,close,volume",
        "Ticker,Date,Open,High,Low,Close,Volume",
        "NAME, Timestamp ,OPEN,HIGH,LOW,CLOSE,VOL",
        "time,o,h,l,c,v,sym",
    ],
)
def test_bar_file_accepts_column_aliases_in_any_case(tmp_path: Path, header: str) -> None:
    names = [n.strip().lower() for n in header.split(",")]
    values = {
        "sym": "aapl",
        "symbol": "aapl",
        "ticker": "aapl",
        "name": "aapl",
        "datetime": "2019-02-11",
        "date": "2019-02-11",
        "timestamp": "2019-02-11",
        "time": "2019-02-11",
    }
    ohlcv = dict(
        zip(
            ["open", "high", "low", "close", "volume"],
            ["10", "11", "9", "10.5", "1000"],
            strict=True,
        )
    )
    ohlcv |= dict(
        zip(
            ["o", "h", "l", "c", "v", "vol"], ["10", "11", "9", "10.5", "1000", "1000"], strict=True
        )
    )
    row = ",".join(values.get(n) or ohlcv[n] for n in names)
    path = write(tmp_path / "bars.csv", f"{header}\n{row}\n")

    loaded = read_bar_file(path)

    assert loaded.kind is BarKind.DAILY
    assert loaded.daily == (
        DailyBar(
            symbol=AAPL,
            session=date(2019, 2, 11),
            open=Decimal("10"),
            high=Decimal("11"),
            low=Decimal("9"),
            close=Decimal("10.5"),
            volume=1000,
        ),
    )


def test_bar_file_missing_column_error_names_file_found_and_required(tmp_path: Path) -> None:
    path = write(
        tmp_path / "no_volume.csv", "symbol,datetime,open,high,low,close\nA,2019-02-11,1,1,1,1\n"
    )

    with pytest.raises(DataError) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert str(path) in message
    assert "missing column(s) volume" in message
    assert "found symbol, datetime, open, high, low, close" in message
    assert "required: a time column (datetime, timestamp, date or time), open, high" in message


def test_bar_file_without_symbol_column_needs_spec_symbol(tmp_path: Path) -> None:
    path = write(tmp_path / "one.csv", "date,open,high,low,close,volume\n2019-02-11,1,1,1,1,5\n")

    with pytest.raises(DataError, match=r"missing column\(s\) symbol"):
        read_bar_file(path)
    loaded = read_bar_file(path, BarFileSpec(symbol="inda"))

    assert [b.symbol for b in loaded.daily] == ["INDA"]


def test_bar_file_named_symbol_column_is_used(tmp_path: Path) -> None:
    path = write(
        tmp_path / "one.csv",
        "Security,name,date,open,high,low,close,volume\nMSFT,Microsoft,2019-02-11,1,1,1,1,5\n",
    )

    loaded = read_bar_file(path, BarFileSpec(symbol_column="security"))

    assert [b.symbol for b in loaded.daily] == [MSFT]


def test_trade_prints_are_refused_with_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ticks.csv", "symbol,datetime,price,size\nAIG,2013-10-07 09:30:00,49,100\n"
    )

    with pytest.raises(DataError, match="trade prints, with price and size: aggregate"):
        read_bar_file(path)


def test_separate_date_and_time_columns_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "split.csv",
        "symbol,date,time,open,high,low,close,volume\nA,2019-02-11,09:31:00,1,1,1,1,5\n",
    )

    with pytest.raises(DataError, match="separate date and time columns: join them"):
        read_bar_file(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "cannot read bar file .*: its first line is empty"),
        (b"\x1f\x8b\x08not really gzip", "cannot read bar file"),
        (b"PAR1 broken parquet", "cannot read Parquet file"),
        (
            b"symbol,datetime,open,high,low,close,volume\nA,soon,1,1,1,1,1\n",
            "cannot read time stamps",
        ),
    ],
)
def test_unreadable_bar_file_raises_data_error(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)

    with pytest.raises(DataError, match=match):
        read_bar_file(path)


def test_missing_bar_file_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read bar file"):
        read_bar_file(tmp_path / "absent.csv")


def test_headerless_semicolon_file_reads_ninjatrader_layout(tmp_path: Path) -> None:
    path = write(
        tmp_path / "spy.csv",
        "20110103 090100;126.35;126.39;126.35;126.39;1579\n"
        "20110103 090200;126.45;126.45;126.45;126.45;300\n",
    )

    loaded = read_bar_file(path, BarFileSpec(symbol="SPY", timezone="UTC", bar_stamp=BarStamp.END))

    assert loaded.intraday[0].start == datetime(2011, 1, 3, 9, 0, tzinfo=UTC)
    assert loaded.intraday[0].start.astimezone(NY).time() == time(4, 0)


# --- stamps and time zones -----------------------------------------------------------------------


def test_auto_stamp_reads_0931_to_1600_as_bar_end(tmp_path: Path) -> None:
    path = write(tmp_path / "end.csv", csv_text(session_minutes(date(2019, 2, 11), stamp="end")))

    loaded = read_bar_file(path)

    assert loaded.bar_stamp is BarStamp.END
    assert loaded.interval_secs == 60
    assert loaded.intraday[0].start == datetime(2019, 2, 11, 14, 30, tzinfo=UTC)
    assert loaded.intraday[-1].start == datetime(2019, 2, 11, 20, 59, tzinfo=UTC)


def test_auto_stamp_reads_0930_to_1559_as_bar_start(tmp_path: Path) -> None:
    path = write(
        tmp_path / "start.csv", csv_text(session_minutes(date(2019, 2, 11), stamp="start"))
    )

    loaded = read_bar_file(path)

    assert loaded.bar_stamp is BarStamp.START
    assert loaded.intraday[0].start == datetime(2019, 2, 11, 14, 30, tzinfo=UTC)


def test_auto_stamp_uses_0400_and_2000_for_extended_hours(tmp_path: Path) -> None:
    rows = minute_rows(date(2019, 2, 11), time(4, 1), 16 * 60)  # 04:01 .. 20:00: stamped at the end
    path = write(tmp_path / "ext.csv", csv_text(rows))

    loaded = read_bar_file(path)

    assert loaded.bar_stamp is BarStamp.END
    assert loaded.intraday[0].start.astimezone(NY).time() == time(4, 0)


def test_explicit_stamp_overrides_inference(tmp_path: Path) -> None:
    path = write(
        tmp_path / "start.csv", csv_text(session_minutes(date(2019, 2, 11), stamp="start"))
    )

    loaded = read_bar_file(path, BarFileSpec(bar_stamp=BarStamp.END))

    assert loaded.intraday[0].start == datetime(2019, 2, 11, 14, 29, tzinfo=UTC)


def test_ambiguous_stamps_ask_for_bar_stamp(tmp_path: Path) -> None:
    rows = minute_rows(date(2019, 2, 11), time(9, 30), 391)  # 09:30 .. 16:00: both edges
    path = write(tmp_path / "both.csv", csv_text(rows))

    with pytest.raises(DataError, match="pass bar_stamp=start or bar_stamp=end"):
        read_bar_file(path)
    spec = BarFileSpec(bar_stamp="start")  # type: ignore[arg-type]  # a string, as the CLI gives it
    assert read_bar_file(path, spec).bar_stamp is BarStamp.START


def test_naive_exchange_time_converts_to_utc_across_dst(tmp_path: Path) -> None:
    rows = session_minutes(date(2019, 3, 8), stamp="start") + session_minutes(
        date(2019, 3, 11), stamp="start"
    )
    path = write(tmp_path / "dst.csv", csv_text(rows))

    opens = [
        b.start
        for b in read_bar_file(path).intraday
        if b.start.astimezone(NY).time() == time(9, 30)
    ]

    assert opens == [
        datetime(2019, 3, 8, 14, 30, tzinfo=UTC),  # EST, UTC-5
        datetime(2019, 3, 11, 13, 30, tzinfo=UTC),  # EDT, UTC-4
    ]


def test_naive_utc_stamps_read_with_timezone_utc(tmp_path: Path) -> None:
    rows = minute_rows(date(2019, 3, 11), time(13, 30), 390)  # 09:30 EDT as UTC, bar start
    path = write(tmp_path / "utc.csv", csv_text(rows))

    loaded = read_bar_file(path, BarFileSpec(timezone="UTC"))

    assert loaded.bar_stamp is BarStamp.START
    assert loaded.intraday[0].start == datetime(2019, 3, 11, 13, 30, tzinfo=UTC)


def test_stamps_with_offsets_ignore_the_spec_timezone(tmp_path: Path) -> None:
    rows = [
        "AAPL,2014-06-05 09:30:00-04:00,1,1,1,1,1",
        "AAPL,2014-06-05 09:31:00-04:00,1,1,1,1,1",
    ]
    path = write(tmp_path / "aware.csv", csv_text(rows))

    loaded = read_bar_file(path, BarFileSpec(timezone="Asia/Tokyo", bar_stamp=BarStamp.START))

    assert loaded.intraday[0].start == datetime(2014, 6, 5, 13, 30, tzinfo=UTC)


def test_one_bar_per_day_with_times_is_daily(tmp_path: Path) -> None:
    rows = ["AAPL,2019-02-11 16:00:00,1,2,1,2,10", "AAPL,2019-02-12 16:00:00,2,3,2,3,10"]
    path = write(tmp_path / "eod.csv", csv_text(rows))

    loaded = read_bar_file(path)

    assert loaded.kind is BarKind.DAILY
    assert [b.session for b in loaded.daily] == [date(2019, 2, 11), date(2019, 2, 12)]


def test_yyyymmdd_integer_dates_are_daily(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.csv", csv_text(["AAPL,20190211,1,2,1,2,10"], "symbol,date,o,h,l,c,v")
    )

    assert read_bar_file(path).daily[0].session == date(2019, 2, 11)


def test_fifteen_minute_interval_is_inferred(tmp_path: Path) -> None:
    first = at(date(2019, 2, 11), 9, 45)
    rows = [
        f"AAPL,{first + timedelta(minutes=15 * i):%Y-%m-%d %H:%M:%S},1,1,1,1,1" for i in range(26)
    ]
    path = write(tmp_path / "q.csv", csv_text(rows))

    loaded = read_bar_file(path)

    assert (loaded.interval_secs, loaded.bar_stamp) == (900, BarStamp.END)
    assert loaded.intraday[0].start == datetime(2019, 2, 11, 14, 30, tzinfo=UTC)
    assert loaded.intraday[0].interval_secs == 900


# --- values and bad rows -------------------------------------------------------------------------


def test_prices_round_to_four_places_and_volumes_to_integers(tmp_path: Path) -> None:
    rows = ["AAPL,2019-02-11,170.77010000001,171.2,170.6755,170.7701,619925.6"]
    path = write(tmp_path / "p.csv", csv_text(rows))

    bar = read_bar_file(path).daily[0]

    assert (str(bar.open), str(bar.low), bar.volume) == ("170.7701", "170.6755", 619926)


def test_bad_rows_are_dropped_and_counted_not_fatal(tmp_path: Path) -> None:
    rows = [
        "AAPL,2019-02-11,10,11,9,10,100",
        "AAPL,2019-02-12,10,9.5,9,10,100",  # high below open
        "AAPL,2019-02-13,0,11,9,10,100",  # zero price
        "AAPL,2019-02-14,10,,9,10,100",  # missing high
        "AAPL,2019-02-15,10,11,9,10,-5",  # negative volume
        "BAD/SYM,2019-02-11,10,11,9,10,100",
        "AAPL,2019-02-11,10,11,9,10,100",  # duplicate day
        "MSFT,2019-02-11,10,11,10.5,10,100",  # low above close
    ]
    path = write(tmp_path / "bad.csv", csv_text(rows))

    loaded = read_bar_file(path)

    assert [(b.symbol, b.session) for b in loaded.daily] == [(AAPL, date(2019, 2, 11))]
    assert [(r.row, r.symbol, r.day, r.reason) for r in loaded.dropped] == [
        (2, "AAPL", date(2019, 2, 12), DropReason.INCONSISTENT_OHLC),
        (3, "AAPL", date(2019, 2, 13), DropReason.NON_POSITIVE_PRICE),
        (4, "AAPL", date(2019, 2, 14), DropReason.MISSING_VALUE),
        (5, "AAPL", date(2019, 2, 15), DropReason.NEGATIVE_VOLUME),
        (6, "BAD/SYM", date(2019, 2, 11), DropReason.BAD_SYMBOL),  # its day, though unplaced
        (7, "AAPL", date(2019, 2, 11), DropReason.DUPLICATE),
        (8, "MSFT", date(2019, 2, 11), DropReason.INCONSISTENT_OHLC),
    ]
    described = describe_dropped(loaded.dropped)
    assert described.startswith(
        "bad.csv: 2 row(s) of 2 symbol(s) with inconsistent OHLC (AAPL 2019-02-12, MSFT 2019-02-11)"
    )
    assert "1 row(s) of 1 symbol(s) with bad symbol (BAD/SYM 2019-02-11)" in described


def test_the_dropped_rows_warning_names_each_symbol_once_up_to_ten() -> None:
    path = Path("big.csv")
    rows = [
        DroppedRow(path=path, row=n, symbol=f"S{n % 12}", day=None, reason=DropReason.BAD_SYMBOL)
        for n in range(1, 101)
    ]

    described = describe_dropped(rows)

    assert described.startswith("big.csv: 100 row(s) of 12 symbol(s) with bad symbol (S1 row 1, ")
    assert described.count("S1 ") == 1
    assert described.endswith("S10 row 10 and 2 more)")


def test_parquet_and_gzip_csv_read_the_same_bars(tmp_path: Path) -> None:
    text = csv_text(session_minutes(date(2019, 2, 11), stamp="end"))
    plain = write(tmp_path / "bars.csv", text)
    zipped = tmp_path / "bars.csv.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    stamps = [datetime.fromisoformat(r.split(",")[1]) for r in text.splitlines()[1:]]
    table = pa.table(
        {
            "Symbol": ["AAPL"] * len(stamps),
            "DateTime": pa.array(stamps, pa.timestamp("ns")),
            "Open": [float(r.split(",")[2]) for r in text.splitlines()[1:]],
            "High": [float(r.split(",")[3]) for r in text.splitlines()[1:]],
            "Low": [float(r.split(",")[4]) for r in text.splitlines()[1:]],
            "Close": [float(r.split(",")[5]) for r in text.splitlines()[1:]],
            "Volume": [100] * len(stamps),
        }
    )
    parquet = tmp_path / "bars.data"  # told apart by content, not by name
    pq.write_table(table, parquet)

    loaded = [read_bar_file(p).intraday for p in (plain, zipped, parquet)]

    assert len(loaded[0]) == 390
    assert loaded[0] == loaded[1] == loaded[2]


def test_parquet_with_zoned_timestamps_reads_as_instants(tmp_path: Path) -> None:
    stamps = [datetime(2013, 10, 4, 9, 30, tzinfo=NY) + timedelta(minutes=i) for i in range(3)]
    table = pa.table(
        {
            "symbol": ["AIG"] * 3,
            "datetime": pa.array(stamps, pa.timestamp("us", tz="America/New_York")),
            "open": [49.0] * 3,
            "high": [49.0] * 3,
            "low": [49.0] * 3,
            "close": [49.0] * 3,
            "volume": [1, 2, 3],
        }
    )
    path = tmp_path / "aig.parquet"
    pq.write_table(table, path)

    loaded = read_bar_file(path)

    assert [b.start for b in loaded.intraday] == [s.astimezone(UTC) for s in stamps]
    assert loaded.bar_stamp is BarStamp.START


def test_spec_refuses_unknown_timezone_and_stamp() -> None:
    with pytest.raises(ConfigError, match=r"BarFileSpec.timezone 'Mars/Olympus' is not an IANA"):
        BarFileSpec(timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match=r"BarFileSpec.bar_stamp 'middle' is not one of"):
        BarFileSpec(bar_stamp="middle")  # type: ignore[arg-type]  # a bad value: what is tested


# --- split factors -------------------------------------------------------------------------------


def test_factor_row_applies_up_to_and_including_its_date(tmp_path: Path) -> None:
    path = write(tmp_path / "aapl.csv", "20140606,0.9,0.0357143,645.57\n20140806,0.9,0.25,94.97\n")

    factors = read_factor_file(path, AAPL)

    assert factors.factor_on(date(2014, 6, 6)) == pytest.approx(0.0357143)
    assert factors.factor_on(date(2014, 6, 9)) == 0.25
    assert factors.factor_on(date(2099, 1, 1)) == 1.0
    assert factors.ratio(date(2014, 6, 6), date(2014, 6, 9)) == 1 / 7


def test_split_factors_adjust_prices_and_volumes_before_the_split(tmp_path: Path) -> None:
    folder = tmp_path / "factors"
    folder.mkdir()
    write(
        folder / "aapl.csv",
        "20140606,0.9,0.0357143,645.57\n20140806,0.9,0.25,94.97\n20501231,1,1,0\n",
    )
    rows = ["AAPL,2014-06-06,700,700,630,645.57,1000", "AAPL,2014-06-09,92.7,93.9,91.8,93.7,7000"]
    rows.append("MSFT,2014-06-06,40,41,39,40,10")
    path = write(tmp_path / "d.csv", csv_text(rows))

    adjusted = read_bar_file(path, BarFileSpec(factors_dir=folder))
    raw = read_bar_file(path)

    before = adjusted.daily[0]
    assert (before.close, before.high, before.volume) == (Decimal("92.2243"), Decimal("100"), 7000)
    assert adjusted.daily[1] == raw.daily[1]
    assert adjusted.unadjusted_symbols == (MSFT,)
    assert raw.daily[0].close == Decimal("645.57")


def test_missing_factor_folder_is_a_data_error(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", csv_text(["AAPL,2014-06-06,1,1,1,1,1"]))

    with pytest.raises(DataError, match=r"factor folder .* does not exist"):
        read_bar_file(path, BarFileSpec(factors_dir=tmp_path / "nowhere"))


def test_malformed_factor_file_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "aapl.csv", "20140606,0.9,0.0357143,645.57\n2014-06-06,x\n")

    with pytest.raises(DataError, match=r"aapl.csv, line 2: expected yyyymmdd"):
        read_factor_file(path, AAPL)


# --- replay --------------------------------------------------------------------------------------


def bar(name: str, local: datetime, price: str, volume: int = 100) -> Bar:
    p = Decimal(price)
    return Bar(
        symbol=symbol(name),
        start=local.replace(tzinfo=NY).astimezone(UTC),
        open=p,
        high=p,
        low=p,
        close=p,
        volume=volume,
    )


def daily(name: str, day: date, open_: str, close: str) -> DailyBar:
    o, c = Decimal(open_), Decimal(close)
    return DailyBar(
        symbol=symbol(name), session=day, open=o, high=max(o, c), low=min(o, c), close=c, volume=10
    )


DAY = date(2019, 2, 12)
PREV = date(2019, 2, 11)


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm))


@pytest.mark.asyncio
async def test_replay_premarket_sums_bars_ending_by_scan_time() -> None:
    market = ReplayMarketData(
        intraday=[
            bar("AAPL", at(PREV, 15, 59), "100"),
            bar("AAPL", at(DAY, 4, 0), "104", 10),
            bar("AAPL", at(DAY, 8, 59), "105", 20),
            bar("AAPL", at(DAY, 9, 0), "106", 40),  # ends 09:01: after the scan
            bar("AAPL", at(DAY, 9, 30), "107"),
        ]
    )
    until = datetime.combine(DAY, time(9, 0), NY)

    found = await market.premarket(AAPL, DAY, until)

    assert found is not None
    assert (found.last, found.volume, found.as_of) == (Decimal("105"), 30, until.astimezone(UTC))


@pytest.mark.asyncio
async def test_replay_premarket_before_any_trade_is_previous_close_and_zero_volume() -> None:
    market = ReplayMarketData(
        intraday=[bar("AAPL", at(PREV, 15, 59), "100"), bar("AAPL", at(DAY, 8, 0), "104")]
    )

    found = await market.premarket(AAPL, DAY, datetime.combine(DAY, time(7, 0), NY))

    assert found is not None
    assert (found.last, found.volume) == (Decimal("100"), 0)


@pytest.mark.asyncio
async def test_replay_without_premarket_bars_uses_the_open_and_no_volume() -> None:
    from_daily = ReplayMarketData(daily=[daily("AAPL", DAY, "101", "102")])
    from_bars = ReplayMarketData(
        intraday=[bar("AAPL", at(DAY, 9, 30), "103"), bar("AAPL", at(DAY, 9, 31), "104")]
    )
    until = datetime.combine(DAY, time(9, 0), NY)

    first = await from_daily.premarket(AAPL, DAY, until)
    second = await from_bars.premarket(AAPL, DAY, until)

    assert first is not None
    assert second is not None
    assert (first.last, first.volume, second.last, second.volume) == (
        Decimal("101"),
        None,
        Decimal("103"),
        None,
    )
    assert await from_daily.premarket(AAPL, PREV, until) is None
    assert await from_daily.premarket(MSFT, DAY, until) is None


@pytest.mark.asyncio
async def test_replay_aggregates_daily_bars_from_the_regular_session() -> None:
    market = ReplayMarketData(
        intraday=[
            bar("AAPL", at(PREV, 8, 0), "90", 1000),  # pre-market: not in the daily bar
            bar("AAPL", at(PREV, 9, 30), "100", 10),
            bar("AAPL", at(PREV, 12, 0), "110", 20),
            bar("AAPL", at(PREV, 15, 59), "105", 30),
            bar("AAPL", at(PREV, 16, 0), "120", 1000),  # after hours
        ]
    )

    bars = await market.daily_bars(AAPL, DAY, 5)

    assert bars == [
        DailyBar(
            symbol=AAPL,
            session=PREV,
            open=Decimal("100"),
            high=Decimal("110"),
            low=Decimal("100"),
            close=Decimal("105"),
            volume=60,
        )
    ]
    assert await market.daily_bars(AAPL, PREV, 5) == []


@pytest.mark.asyncio
async def test_replay_prefers_the_daily_file_and_counts_back_from_before() -> None:
    days = [date(2019, 2, d) for d in (4, 5, 6, 7, 8, 11)]
    market = ReplayMarketData(
        daily=[daily("AAPL", d, "10", "11") for d in days],
        intraday=[bar("AAPL", at(PREV, 9, 30), "99")],
    )

    bars = await market.daily_bars(AAPL, PREV, 3)

    assert [b.session for b in bars] == days[2:5]
    assert (await market.daily_bars(AAPL, DAY, 1))[0].close == Decimal("11")


@pytest.mark.asyncio
async def test_replay_session_bars_are_regular_hours_ordered_by_start_then_symbol() -> None:
    market = ReplayMarketData(
        intraday=[
            bar("MSFT", at(DAY, 9, 31), "50"),
            bar("AAPL", at(DAY, 9, 31), "100"),
            bar("MSFT", at(DAY, 9, 30), "50"),
            bar("AAPL", at(DAY, 9, 0), "100"),
            bar("AAPL", at(DAY, 16, 0), "100"),
        ]
    )

    found = await market.session_bars(DAY, [AAPL, MSFT])
    only = await market.session_bars(DAY, [MSFT])

    assert [(b.start.astimezone(NY).time(), b.symbol) for b in found] == [
        (time(9, 30), MSFT),
        (time(9, 31), AAPL),
        (time(9, 31), MSFT),
    ]
    assert {b.symbol for b in only} == {MSFT}
    assert await market.symbols() == [AAPL, MSFT]
    assert market.sessions() == [DAY]


@pytest.mark.asyncio
async def test_replay_sees_an_early_close_in_thin_afternoon_volume() -> None:
    half_day = date(2015, 12, 24)
    morning = [
        bar("GOOG", at(half_day, 9, 30) + timedelta(minutes=i), "750", 1000) for i in range(210)
    ]
    after = [
        bar("GOOG", at(half_day, 13, 5), "751", 100),
        bar("GOOG", at(half_day, 15, 44), "752", 3),
    ]
    market = ReplayMarketData(intraday=morning + after)

    bars = await market.session_bars(half_day, [symbol("GOOG")])

    assert bars[-1].start.astimezone(NY).time() == time(12, 59)
    assert market.session_close(half_day) == datetime(2015, 12, 24, 18, 0, tzinfo=UTC)


@pytest.mark.asyncio
async def test_replay_truncated_day_is_not_an_early_close() -> None:
    market = ReplayMarketData(
        intraday=[bar("INDA", at(DAY, 9, 30), "50"), bar("INDA", at(DAY, 10, 29), "50")]
    )

    assert market.session_close(DAY) == datetime(2019, 2, 12, 21, 0, tzinfo=UTC)
    assert len(await market.session_bars(DAY, [symbol("INDA")])) == 2


def test_replay_sessions_come_from_daily_bars_without_intraday() -> None:
    market = ReplayMarketData(daily=[daily("AAPL", DAY, "1", "1"), daily("MSFT", PREV, "1", "1")])

    assert market.sessions() == [PREV, DAY]


def test_load_replay_combines_a_daily_and_an_intraday_file(tmp_path: Path) -> None:
    daily_file = write(
        tmp_path / "d.csv", csv_text(["AAPL,2019-02-08,1,2,1,2,10", "AAPL,2019-02-11,2,3,2,3,1"])
    )
    minute_file = write(
        tmp_path / "m.csv",
        csv_text([*session_minutes(DAY, stamp="end"), "AAPL,2019-02-12 10:00:00,5,1,1,1,1"]),
    )

    loaded = load_replay([daily_file, minute_file], BarFileSpec())

    assert [f.kind for f in loaded.files] == [BarKind.DAILY, BarKind.INTRADAY]
    assert loaded.market_data.sessions() == [DAY]
    assert [(r.path.name, r.reason) for r in loaded.dropped] == [
        ("m.csv", DropReason.INCONSISTENT_OHLC)
    ]


def test_load_replay_refuses_mixed_intervals_and_repeated_files(tmp_path: Path) -> None:
    minutes = write(tmp_path / "m.csv", csv_text(session_minutes(DAY, stamp="end")))
    quarter = [
        f"AAPL,{at(DAY, 9, 45) + timedelta(minutes=15 * i):%Y-%m-%d %H:%M:%S},1,1,1,1,1"
        for i in range(26)
    ]
    quarters = write(tmp_path / "q.csv", csv_text(quarter))

    with pytest.raises(DataError, match=r"different bar intervals \(m.csv: 60 s, q.csv: 900 s\)"):
        load_replay([minutes, quarters], BarFileSpec())
    with pytest.raises(DataError, match="pass each file once"):
        load_replay([minutes, minutes], BarFileSpec())
    with pytest.raises(DataError, match="no bar files given"):
        load_replay([], BarFileSpec())


def test_split_reference_is_the_last_date_of_all_files(tmp_path: Path) -> None:
    folder = tmp_path / "factors"
    folder.mkdir()
    write(folder / "aapl.csv", "20140606,0.9,0.0357143,645.57\n20140806,0.9,0.25,94.97\n")
    before = write(
        tmp_path / "before.csv", csv_text(["AAPL,2014-06-06,645.57,645.57,645.57,645.57,7"])
    )
    after = write(tmp_path / "after.csv", csv_text(["AAPL,2014-06-09,92,92,92,92,1"]))

    first, _ = read_bar_files([before, after], BarFileSpec(factors_dir=folder))

    assert first.daily[0].close == Decimal("92.2243")


def test_infinite_prices_and_absurd_volumes_are_dropped_and_named_not_fatal(
    tmp_path: Path,
) -> None:
    rows = [
        "AAPL,2019-02-11,10,11,9,10,100",
        "AAPL,2019-02-12,10,inf,9,10,100",
        "AAPL,2019-02-13,10,11,9,10,nan",
        "AAPL,2019-02-14,10,11,9,10,1e20",
        "BRK_B,2019-02-11,10,11,9,10,100",
    ]
    path = write(tmp_path / "odd.csv", csv_text(rows, "symbol,date,open,high,low,close,volume"))

    loaded = read_bar_file(path)

    assert [(b.symbol, b.session) for b in loaded.daily] == [
        (AAPL, date(2019, 2, 11)),
        (symbol("BRK.B"), date(2019, 2, 11)),
    ]
    assert [(r.row, r.reason) for r in loaded.dropped] == [
        (2, DropReason.NOT_FINITE),
        (3, DropReason.MISSING_VALUE),
        (4, DropReason.NOT_FINITE),
    ]


def test_class_shares_are_kept_under_one_spelling_whatever_the_file_writes(tmp_path: Path) -> None:
    rows = [
        "BRK.B,2019-02-11,10,11,9,10,100",
        "BRK-B,2019-02-12,10,11,9,10,100",
        "ABR_A,2019-02-11,10,11,9,10,100",
    ]
    path = write(tmp_path / "classes.csv", csv_text(rows, "symbol,date,open,high,low,close,volume"))

    loaded = read_bar_file(path)

    assert loaded.dropped == ()
    assert [(b.symbol, b.session) for b in loaded.daily] == [
        (symbol("ABR.A"), date(2019, 2, 11)),
        (symbol("BRK.B"), date(2019, 2, 11)),
        (symbol("BRK.B"), date(2019, 2, 12)),
    ]


def test_an_intraday_row_dropped_for_its_symbol_is_named_with_its_exchange_day(
    tmp_path: Path,
) -> None:
    rows = [
        "AAPL,2019-02-11 14:30:00,10,11,9,10,100",
        "AAPL,2019-02-11 14:31:00,10,11,9,10,100",
        "BAD/SYM,2019-02-12 01:30:00,10,11,9,10,100",  # 20:30 New York time on the 11th
        "SPY,,10,11,9,10,100",  # no stamp: no day, its row number instead
    ]
    path = write(tmp_path / "utc.csv", csv_text(rows))

    loaded = read_bar_file(path, BarFileSpec(timezone="UTC", bar_stamp=BarStamp.START))

    assert [(r.symbol, r.day, r.reason) for r in loaded.dropped] == [
        ("BAD/SYM", date(2019, 2, 11), DropReason.BAD_SYMBOL),
        ("SPY", None, DropReason.MISSING_VALUE),
    ]
    assert "(SPY row 4)" in describe_dropped(loaded.dropped)
