"""The previous close: the previous session's daily bar, else the quote's `pc`, else none; and the
gap scanner measuring from it (issue 18: a null Yahoo row for yesterday made the scan measure the
gap from two sessions ago)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fin_agent.domain.gap_scanner import GapScanner, RejectRule, SymbolSnapshot, UniverseSnapshot
from fin_agent.domain.prev_close import CloseSource, previous_close
from fin_agent.domain.rules import ScanRules
from fin_agent.domain.values import DailyBar, Premarket, symbol

XYZ = symbol("XYZ")
DAY = date(2024, 3, 15)  # a Friday
YESTERDAY = date(2024, 3, 14)
TWO_AGO = date(2024, 3, 13)
AT = datetime(2024, 3, 15, 13, 0, tzinfo=UTC)


def history(last_session: date, last_close: str, count: int = 30) -> tuple[DailyBar, ...]:
    """`count` quiet weekday bars ending at `last_session` (close `last_close`), heavy volume."""
    days: list[date] = []
    day = last_session
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    close = Decimal(last_close)
    return tuple(
        DailyBar(
            symbol=XYZ,
            session=d,
            open=close,
            high=close + Decimal("0.5"),
            low=close - Decimal("0.5"),
            close=close,
            volume=2_000_000,
        )
        for d in reversed(days)
    )


def premarket(last: str, quoted: str | None) -> Premarket:
    return Premarket(
        symbol=XYZ,
        last=Decimal(last),
        volume=None,
        as_of=AT,
        quoted_prev_close=None if quoted is None else Decimal(quoted),
    )


def test_the_previous_sessions_daily_bar_is_the_previous_close() -> None:
    close = previous_close(
        daily_bars=history(YESTERDAY, "20.00"), quoted=Decimal("20.00"), prev_session=YESTERDAY
    )

    assert close is not None
    assert (close.price, close.source, close.disagrees) == (
        Decimal("20.00"),
        CloseSource.DAILY_BAR,
        False,
    )


def test_a_quote_that_differs_from_the_daily_bar_is_a_disagreement_the_bar_wins() -> None:
    close = previous_close(
        daily_bars=history(YESTERDAY, "20.00"), quoted=Decimal("20.05"), prev_session=YESTERDAY
    )

    assert close is not None
    assert (close.price, close.source, close.disagrees) == (
        Decimal("20.00"),
        CloseSource.DAILY_BAR,
        True,
    )
    assert close.quoted_close == Decimal("20.05")


def test_without_the_previous_sessions_bar_the_quotes_close_is_used() -> None:
    close = previous_close(
        daily_bars=history(TWO_AGO, "19.00"), quoted=Decimal("20.00"), prev_session=YESTERDAY
    )

    assert close is not None
    assert (close.price, close.source, close.disagrees) == (
        Decimal("20.00"),
        CloseSource.QUOTE,
        True,
    )
    assert close.last_daily_session == TWO_AGO


def test_without_either_source_there_is_no_previous_close() -> None:
    assert (
        previous_close(daily_bars=history(TWO_AGO, "19.00"), quoted=None, prev_session=YESTERDAY)
        is None
    )


def test_an_unknown_previous_session_takes_the_last_daily_bar_as_before() -> None:
    close = previous_close(
        daily_bars=history(TWO_AGO, "19.00"), quoted=Decimal("20.00"), prev_session=None
    )

    assert close is not None
    assert (close.price, close.source) == (Decimal("19.00"), CloseSource.DAILY_BAR)


def snapshot(item: SymbolSnapshot) -> UniverseSnapshot:
    return UniverseSnapshot(day=DAY, taken_at=AT, symbols=(item,), prev_session=YESTERDAY)


def test_the_scan_measures_the_gap_from_the_quotes_close_when_yesterdays_bar_is_missing() -> None:
    # The candidate: 14.03 % from yesterday's close, 14.91 % from the one before.
    item = SymbolSnapshot(
        symbol=XYZ,
        daily_bars=history(TWO_AGO, "19.90"),
        premarket=premarket("22.87", quoted="20.06"),
    )

    result = GapScanner(ScanRules()).scan(snapshot(item))

    (candidate,) = result.candidates
    assert candidate.prev_close == Decimal("20.06")
    assert round(candidate.gap_pct, 2) == Decimal("14.01")


def test_the_scan_refuses_a_gap_over_two_sessions_naming_the_missing_session() -> None:
    item = SymbolSnapshot(
        symbol=XYZ, daily_bars=history(TWO_AGO, "19.90"), premarket=premarket("22.87", None)
    )

    result = GapScanner(ScanRules()).scan(snapshot(item))

    (rejection,) = result.rejections
    assert rejection.rule is RejectRule.NO_DATA
    assert rejection.detail == (
        "no close of the previous session 2024-03-14: the daily bars end 2024-03-13 and no "
        "quote carried one"
    )
