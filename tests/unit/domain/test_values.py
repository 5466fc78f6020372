"""Market values refuse what is not a market value: NaN and infinite prices or volumes raise
`DataError` naming the row (never a quiet pass or a `decimal.InvalidOperation` later), and a share
class's symbol is kept whichever separator its source writes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Bar, DailyBar, Premarket, Trade, symbol

AT = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
PRICES = {"open": Decimal("10"), "high": Decimal("11"), "low": Decimal("9"), "close": Decimal("10")}


@pytest.mark.parametrize("written", ["BRK.B", "BRK-B", "brk_b", " BRK.B "])
def test_a_share_class_is_kept_whatever_separator_the_source_writes(written: str) -> None:
    assert symbol(written) == "BRK.B"


@pytest.mark.parametrize("written", ["ABR_A", "ABR-A", "abr.a"])
def test_a_class_share_written_with_an_underscore_is_kept(written: str) -> None:
    assert symbol(written) == "ABR.A"


@pytest.mark.parametrize("written", ["", "1ABC", "BRK/B", "A" * 16, "ABC DEF"])
def test_what_is_not_a_ticker_is_refused_with_examples(written: str) -> None:
    with pytest.raises(DataError, match=r"is not a ticker symbol.*BRK-B or ABR_A"):
        symbol(written)


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("bad", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_a_daily_bar_with_a_non_finite_price_is_refused(field: str, bad: str) -> None:
    prices = {**PRICES, field: Decimal(bad)}

    with pytest.raises(DataError, match=r"daily bar ABC 2025-03-03: prices must be finite"):
        DailyBar(symbol=symbol("ABC"), session=date(2025, 3, 3), volume=1_000, **prices)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1.5, 10**16, True])
def test_a_bar_whose_volume_is_not_a_count_of_shares_is_refused(bad: object) -> None:
    with pytest.raises(DataError, match=r"bar ABC .*volume must be a whole number of shares"):
        Bar(symbol=symbol("ABC"), start=AT, volume=bad, **PRICES)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_daily_bar_whose_volume_is_not_finite_is_refused(bad: float) -> None:
    # Once accepted, a NaN volume ended the whole scan in decimal.InvalidOperation (the ADV).
    with pytest.raises(DataError, match=r"daily bar ABC 2025-03-03: volume must be a whole number"):
        DailyBar(symbol=symbol("ABC"), session=date(2025, 3, 3), volume=bad, **PRICES)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("bad", ["NaN", "Infinity"])
def test_a_bar_with_a_non_finite_price_is_refused(field: str, bad: str) -> None:
    p = {**PRICES, field: Decimal(bad)}

    with pytest.raises(DataError, match=r"bar ABC .*: prices must be finite numbers"):
        Bar(
            symbol=symbol("ABC"),
            start=AT,
            open=p["open"],
            high=p["high"],
            low=p["low"],
            close=p["close"],
            volume=100,
        )


def test_a_negative_volume_still_says_it_is_negative() -> None:
    with pytest.raises(DataError, match="volume must not be negative, got -5"):
        DailyBar(symbol=symbol("ABC"), session=date(2025, 3, 3), volume=-5, **PRICES)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, 2.0])
def test_a_premarket_volume_that_is_not_a_count_is_refused(bad: object) -> None:
    with pytest.raises(DataError, match="pre-market of ABC: volume must be a whole number"):
        Premarket(symbol=symbol("ABC"), last=Decimal("10"), volume=bad, as_of=AT)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "0", "-1"])
def test_a_premarket_last_price_that_is_not_a_price_is_refused(bad: str) -> None:
    with pytest.raises(DataError, match="pre-market of ABC: the last price must be a positive"):
        Premarket(symbol=symbol("ABC"), last=Decimal(bad), volume=100, as_of=AT)


def test_a_premarket_without_volume_data_is_accepted() -> None:
    assert Premarket(symbol=symbol("ABC"), last=Decimal("10"), volume=None, as_of=AT).volume is None


@pytest.mark.parametrize("bad", ["NaN", "Infinity"])
def test_a_trade_at_a_non_finite_price_is_refused(bad: str) -> None:
    with pytest.raises(DataError, match="trade ABC: price must be a positive finite number"):
        Trade(symbol=symbol("ABC"), price=Decimal(bad), size=100, at=AT)


def test_numpy_style_integer_volumes_are_accepted() -> None:
    class Count(int):  # an int subclass, like the integer types columnar readers hand over
        pass

    bar = Bar(
        symbol=symbol("ABC"),
        start=AT,
        open=Decimal("10"),
        high=Decimal("11"),
        low=Decimal("9"),
        close=Decimal("10"),
        volume=Count(500),
    )

    assert bar.volume == 500
