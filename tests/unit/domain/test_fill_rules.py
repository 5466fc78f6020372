"""Bar-mode fill rules: entry price, stop before target, gaps through levels, slippage."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fin_agent.domain.fill_rules import entry_price, exit_price, with_slippage
from fin_agent.domain.orders import FillKind
from fin_agent.domain.values import Bar, Side, symbol

AT = datetime(2024, 1, 2, 14, 40, tzinfo=UTC)


def bar(o: str, h: str, low: str, c: str) -> Bar:
    return Bar(
        symbol=symbol("AAA"),
        start=AT,
        open=Decimal(o),
        high=Decimal(h),
        low=Decimal(low),
        close=Decimal(c),
        volume=1_000,
    )


D = Decimal
# long: trigger 10.51, stop 10.14, target 11.25; short: trigger 10.09, stop 10.46, target 9.35
LONG = (D("10.51"), D("10.14"), D("11.25"))
SHORT = (D("10.09"), D("10.46"), D("9.35"))


# --- entries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("b", "expected"),
    [
        (bar("10.40", "10.60", "10.35", "10.55"), D("10.51")),  # rises through: the trigger
        (bar("10.40", "10.51", "10.35", "10.45"), D("10.51")),  # touches it exactly
        (bar("10.70", "10.90", "10.60", "10.80"), D("10.70")),  # gaps through: the open
        (bar("10.40", "10.50", "10.35", "10.45"), None),  # one cent short
    ],
)
def test_long_entry_fills_at_the_higher_of_trigger_and_open(
    b: Bar, expected: Decimal | None
) -> None:
    assert entry_price(Side.LONG, LONG[0], b) == expected


@pytest.mark.parametrize(
    ("b", "expected"),
    [
        (bar("10.20", "10.25", "10.05", "10.10"), D("10.09")),  # falls through: the trigger
        (bar("10.00", "10.05", "9.90", "9.95"), D("10.00")),  # gaps through: the open
        (bar("10.20", "10.25", "10.10", "10.15"), None),  # one cent short
    ],
)
def test_short_entry_fills_at_the_lower_of_trigger_and_open(
    b: Bar, expected: Decimal | None
) -> None:
    assert entry_price(Side.SHORT, SHORT[0], b) == expected


# --- exits in the fill bar ------------------------------------------------------------------------


def test_long_fill_bar_stop_fills_at_the_stop_price_even_below_the_open() -> None:
    # the open printed before the entry, so only the stop price is a valid fill
    b = bar("10.55", "10.60", "10.00", "10.05")

    assert exit_price(Side.LONG, LONG[1], LONG[2], b, fill_bar=True) == (D("10.14"), FillKind.STOP)


def test_long_fill_bar_ignores_the_target() -> None:
    b = bar("10.45", "11.50", "10.40", "11.40")

    assert exit_price(Side.LONG, LONG[1], LONG[2], b, fill_bar=True) is None


def test_short_fill_bar_stop_fills_at_the_stop_price() -> None:
    b = bar("10.05", "10.60", "10.00", "10.55")

    assert exit_price(Side.SHORT, SHORT[1], SHORT[2], b, fill_bar=True) == (
        D("10.46"),
        FillKind.STOP,
    )


def test_short_fill_bar_ignores_the_target() -> None:
    b = bar("10.15", "10.20", "9.00", "9.10")

    assert exit_price(Side.SHORT, SHORT[1], SHORT[2], b, fill_bar=True) is None


# --- exits in later bars --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("b", "expected"),
    [
        (bar("10.60", "11.30", "10.10", "10.20"), (D("10.14"), FillKind.STOP)),  # both: stop first
        (bar("10.00", "10.10", "9.90", "9.95"), (D("10.00"), FillKind.STOP)),  # opens below stop
        (bar("10.30", "10.40", "10.14", "10.20"), (D("10.14"), FillKind.STOP)),  # touches stop
        (bar("11.00", "11.30", "10.90", "11.20"), (D("11.25"), FillKind.TARGET)),  # target
        (bar("11.40", "11.60", "11.30", "11.50"), (D("11.40"), FillKind.TARGET)),  # opens above
        (bar("10.50", "11.24", "10.15", "11.00"), None),  # neither
    ],
)
def test_long_later_bar_exit(b: Bar, expected: tuple[Decimal, FillKind] | None) -> None:
    assert exit_price(Side.LONG, LONG[1], LONG[2], b, fill_bar=False) == expected


@pytest.mark.parametrize(
    ("b", "expected"),
    [
        (bar("10.00", "10.50", "9.30", "9.40"), (D("10.46"), FillKind.STOP)),  # both: stop first
        (bar("10.60", "10.70", "10.55", "10.65"), (D("10.60"), FillKind.STOP)),  # opens above stop
        (bar("9.60", "9.70", "9.30", "9.40"), (D("9.35"), FillKind.TARGET)),  # target
        (bar("9.20", "9.30", "9.10", "9.15"), (D("9.20"), FillKind.TARGET)),  # opens below target
        (bar("10.00", "10.45", "9.36", "9.50"), None),  # neither
    ],
)
def test_short_later_bar_exit(b: Bar, expected: tuple[Decimal, FillKind] | None) -> None:
    assert exit_price(Side.SHORT, SHORT[1], SHORT[2], b, fill_bar=False) == expected


# --- slippage -------------------------------------------------------------------------------------


def test_slippage_raises_the_price_of_a_buy() -> None:
    assert with_slippage(D("10.00"), buying=True, slippage_bps=D(10)) == D("10.0100")


def test_slippage_lowers_the_price_of_a_sell() -> None:
    assert with_slippage(D("10.00"), buying=False, slippage_bps=D(10)) == D("9.9900")


@pytest.mark.parametrize("buying", [True, False])
def test_zero_slippage_keeps_the_price(buying: bool) -> None:
    assert with_slippage(D("10.51"), buying=buying, slippage_bps=D(0)) == D("10.51")


def test_slippage_rounds_to_a_hundredth_of_a_cent() -> None:
    # 10.01 * 1.0005 = 10.015005 -> 10.0150
    assert str(with_slippage(D("10.01"), buying=True, slippage_bps=D(5))) == "10.0150"
