"""Bar files that would give silently wrong backtests: refused with the fix, or said out loud."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fin_agent.adapters.files.bar_files import BarFileSpec, BarKind, BarStamp, read_bar_file
from fin_agent.adapters.files.replay import ReplayMarketData
from fin_agent.app.bootstrap.replay import DAILY_ONLY_WARNING, load_bar_files
from fin_agent.app.cli.main import main
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Bar, symbol

NY = ZoneInfo("America/New_York")
REPO = Path(__file__).resolve().parents[3]
AAPL = symbol("AAPL")
HEADER = "symbol,datetime,open,high,low,close,volume"


def session_rows(
    day: date, zone: ZoneInfo, *, first: time = time(9, 30), count: int = 390
) -> list[str]:
    """1-minute bars of a New York session from `first`, stamped as naive wall-clock in `zone`."""
    start = datetime.combine(day, first, NY)
    rows = []
    for i in range(count):
        wall = (start + timedelta(minutes=i)).astimezone(zone).replace(tzinfo=None)
        rows.append(f"AAPL,{wall:%Y-%m-%d %H:%M:%S},100,100.5,99.5,100,1000")
    return rows


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


@pytest.mark.parametrize("day", [date(2019, 2, 12), date(2019, 7, 9)])  # EST and EDT
def test_utc_stamps_declared_new_york_are_refused_naming_utc(tmp_path: Path, day: date) -> None:
    path = write(tmp_path / "utc.csv", session_rows(day, ZoneInfo("UTC")))

    with pytest.raises(DataError, match=r"read as America/New_York do not fit .* read as UTC"):
        read_bar_file(path, BarFileSpec(timezone="America/New_York"))
    bars = read_bar_file(path, BarFileSpec(timezone="UTC")).intraday
    assert bars[0].start == datetime.combine(day, time(9, 30), NY).astimezone(UTC)


def test_new_york_stamps_declared_chicago_are_refused_naming_new_york(tmp_path: Path) -> None:
    # Read an hour late they still lie within 04:00-20:00 but never reach the 09:30 open.
    path = write(tmp_path / "ny.csv", session_rows(date(2019, 2, 12), NY))

    with pytest.raises(DataError, match=r"pass --tz America/New_York"):
        read_bar_file(path, BarFileSpec(timezone="America/Chicago"))


def test_pre_market_extract_without_the_open_is_still_read(tmp_path: Path) -> None:
    rows = session_rows(date(2019, 2, 12), NY, first=time(8, 0), count=30)
    path = write(tmp_path / "pm.csv", rows)

    loaded = read_bar_file(path, BarFileSpec(timezone="America/New_York", bar_stamp=BarStamp.START))

    assert (loaded.kind, len(loaded.intraday)) == (BarKind.INTRADAY, 30)


def test_daily_only_data_is_accepted_with_a_statement(tmp_path: Path) -> None:
    rows = [f"AAPL,2019-02-{d:02d},100,101,99,100,1000" for d in (11, 12, 13)]
    path = write(tmp_path / "daily.csv", rows)

    loaded = load_bar_files([path], timezone="America/New_York", bar_stamp="auto", factors_dir=None)

    assert loaded.warnings == (DAILY_ONLY_WARNING,)
    assert loaded.market.sessions() == [date(2019, 2, d) for d in (11, 12, 13)]


def test_backtest_on_daily_bars_alone_says_no_plan_can_be_made(tmp_path: Path) -> None:
    rows = [f"AAPL,2019-02-{d:02d},100,101,99,100,1000" for d in (11, 12, 13)]
    path = write(tmp_path / "daily.csv", rows)
    out, err = io.StringIO(), io.StringIO()

    code = main(
        [
            "--config",
            str(REPO / "config.yaml"),
            "backtest",
            "--data",
            str(path),
            "--from",
            "2019-02-11",
            "--to",
            "2019-02-13",
        ],
        out=out,
        err=err,
    )

    assert code == 0
    assert f"warning: {DAILY_ONLY_WARNING}\n" in err.getvalue()


def bar(local: datetime, price: str, volume: int = 100) -> Bar:
    p = Decimal(price)
    return Bar(
        symbol=AAPL,
        start=local.replace(tzinfo=NY).astimezone(UTC),
        open=p,
        high=p,
        low=p,
        close=p,
        volume=volume,
    )


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm))


@pytest.mark.asyncio
async def test_premarket_is_detected_per_day_not_per_symbol() -> None:
    # Pre-market bars start on the third day: the first two have no pre-market data at all.
    d1, d2, d3, d4 = (date(2019, 2, d) for d in (11, 12, 13, 14))
    market = ReplayMarketData(
        intraday=[
            bar(at(d1, 9, 30), "100"),
            bar(at(d1, 15, 59), "101"),
            bar(at(d2, 9, 30), "110"),
            bar(at(d2, 15, 59), "111"),
            bar(at(d3, 8, 0), "120", 500),
            bar(at(d3, 9, 30), "121"),
            bar(at(d3, 15, 59), "122"),
            bar(at(d4, 9, 30), "130"),
            bar(at(d4, 15, 59), "131"),
            bar(at(date(2019, 2, 15), 7, 0), "140", 50),
        ]
    )

    def nine(day: date) -> datetime:
        return datetime.combine(day, time(9, 0), NY)

    before = await market.premarket(AAPL, d2, nine(d2))
    covered = await market.premarket(AAPL, d3, nine(d3))
    quiet = await market.premarket(AAPL, d4, nine(d4))

    assert before is not None
    assert covered is not None
    assert quiet is not None
    assert (before.last, before.volume) == (Decimal("110"), None)  # the day's open, not 0 %
    assert (covered.last, covered.volume) == (Decimal("120"), 500)
    assert (quiet.last, quiet.volume) == (Decimal("122"), 0)  # inside the span: no trades


@pytest.mark.data
def test_shared_naive_utc_files_declared_new_york_are_refused(shared_data: Path) -> None:
    spy = shared_data / "ninjatrader_spy_1min_ext_2011-01_UTC_barend.csv"
    inda = shared_data / "watstreet_INDA_1min_ext_UTC_2023-2025.csv.gz"

    with pytest.raises(DataError, match=r"read as UTC"):
        read_bar_file(spy, BarFileSpec(timezone="America/New_York", symbol="SPY"))
    with pytest.raises(DataError, match=r"read as UTC"):
        read_bar_file(inda, BarFileSpec(timezone="America/New_York", symbol="INDA"))


def test_dropped_rows_are_named_on_stderr_by_rule_count_and_days(tmp_path: Path) -> None:
    days = [date(2019, 1, 2) + timedelta(days=i) for i in range(40)]
    rows = [f"AAPL,{d},100,101,99,100,1000" for d in days if d.weekday() < 5]
    rows += [f"S{i},{days[i]},100,99,101,100,1000" for i in range(12)]  # low above high
    path = write(tmp_path / "daily.csv", rows)
    out, err = io.StringIO(), io.StringIO()

    code = main(
        [
            "--config",
            str(REPO / "config.yaml"),
            "scan",
            "--date",
            "2019-02-08",
            "--data",
            str(path),
        ],
        out=out,
        err=err,
    )

    assert code == 0
    examples = ", ".join(f"S{i} {days[i]}" for i in range(10))
    assert (
        f"warning: daily.csv: 12 row(s) of 12 symbol(s) with inconsistent OHLC ({examples} "
        "and 2 more)\n"
    ) in err.getvalue()
