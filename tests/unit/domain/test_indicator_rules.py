"""Scan filters and entry confirmations: each rule worked by hand, shorts mirrored, and off by
default (the default strategy's scans are untouched)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from fin_agent.domain.entry_confirmations import EntryContext, entry_refusal
from fin_agent.domain.gap_scanner import GapScanner, RejectRule, SymbolSnapshot, UniverseSnapshot
from fin_agent.domain.rules import EntryConfirmations, ScanFilters, ScanRules
from fin_agent.domain.scan_filters import scan_refusal
from fin_agent.domain.values import Bar, DailyBar, Premarket, Side, symbol

D = Decimal
DAY = date(2024, 1, 2)
OPEN = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
AAA = symbol("AAA")


def dailies(closes: list[str]) -> tuple[DailyBar, ...]:
    first = DAY - timedelta(days=len(closes))
    return tuple(
        DailyBar(
            symbol=AAA,
            session=first + timedelta(days=i),
            open=D(c),
            high=D(c) + D("0.5"),
            low=D(c) - D("0.5"),
            close=D(c),
            volume=1_000_000,
        )
        for i, c in enumerate(closes)
    )


def minute(i: int, close: str, volume: int = 1000, spread: str = "0.10") -> Bar:
    return Bar(
        symbol=AAA,
        start=OPEN + timedelta(minutes=i),
        open=D(close),
        high=D(close) + D(spread),
        low=D(close) - D(spread),
        close=D(close),
        volume=volume,
    )


def test_sma_filter_keeps_a_long_above_and_a_short_below_the_average() -> None:
    daily = dailies(["10", "11", "12"])  # 3-day SMA 11
    only = ScanFilters(sma_days=3)

    assert scan_refusal(Side.LONG, D("11.5"), daily, only) is None
    assert scan_refusal(Side.LONG, D("10.5"), daily, only) == (
        "price 10.5 not above its 3-day SMA 11.0000 (scan.filters.sma_days)"
    )
    assert scan_refusal(Side.SHORT, D("10.5"), daily, only) is None
    assert scan_refusal(Side.LONG, D(20), daily, ScanFilters(sma_days=5)) == (
        "3 daily bars, 5 needed for scan.filters.sma_days"
    )


def test_rsi_band_refuses_outside_it() -> None:
    daily = dailies(["10", "11", "12", "13"])  # only gains: RSI(2) 100

    assert scan_refusal(Side.LONG, D(14), daily, ScanFilters(rsi_period=2, rsi_max=D(70))) == (
        "daily RSI(2) 100.00 above scan.filters.rsi_max 70"
    )
    assert scan_refusal(Side.LONG, D(14), daily, ScanFilters(rsi_period=2, rsi_min=D(30))) is None


def test_scanner_rejects_with_rule_indicator_after_the_gap_rules() -> None:
    snapshot = UniverseSnapshot(
        day=DAY,
        taken_at=OPEN - timedelta(minutes=30),
        symbols=(
            SymbolSnapshot(
                symbol=AAA,
                daily_bars=dailies(["10"] * 19 + ["9"]),  # 20-day SMA 9.95, prev close 9
                premarket=Premarket(symbol=AAA, last=D("9.5"), volume=100_000, as_of=OPEN),
            ),
        ),
    )
    rules = ScanRules(gap_min_pct=D(4), filters=ScanFilters(sma_days=20))

    result = GapScanner(rules).scan(snapshot)
    plain = GapScanner(ScanRules(gap_min_pct=D(4))).scan(snapshot)

    [rejection] = result.rejections
    assert rejection.rule is RejectRule.INDICATOR
    assert rejection.detail == "price 9.5 not above its 20-day SMA 9.9500 (scan.filters.sma_days)"
    assert [c.symbol for c in plain.candidates] == [AAA]


def test_filters_off_need_no_more_history_and_leave_the_atr_lookback() -> None:
    assert ScanRules().history_bars == ScanRules().atr_lookback_bars == 43
    assert ScanRules(filters=ScanFilters(sma_days=50)).history_bars == 50
    assert ScanRules(filters=ScanFilters(sma_days=50)).atr_lookback_bars == 43


def context(bars: list[Bar], *, side: Side = Side.LONG, entry: str = "10.50") -> EntryContext:
    return EntryContext.at_trigger(
        side=side,
        entry=D(entry),
        bars=bars,
        adv=D(390_000),  # 1,000 shares a minute on a usual day
        trigger_bar=OPEN + timedelta(minutes=len(bars)),
        opens_at=OPEN,
        closes_at=OPEN + timedelta(minutes=390),
    )


def test_vwap_confirmation_by_hand() -> None:
    # typical prices 10 and 11 on 1,000 shares each: VWAP 10.5
    bars = [minute(0, "10"), minute(1, "11")]
    rules = EntryConfirmations(above_vwap=True)

    assert entry_refusal(context(bars, entry="10.50"), rules) is None
    assert entry_refusal(context(bars, entry="10.49"), rules) == (
        "above_vwap",
        "entry 10.49 not above the session VWAP 10.5000",
    )
    assert entry_refusal(context(bars, side=Side.SHORT, entry="10.49"), rules) is None


def test_rsi_confirmation_caps_a_long_and_floors_a_short() -> None:
    rising = [minute(i, str(10 + i)) for i in range(4)]  # RSI(2) 100
    rules = EntryConfirmations(rsi_period=2, rsi_max=D(85))

    assert entry_refusal(context(rising), rules) == ("rsi_max", "1-minute RSI(2) 100.00 above 85")
    assert entry_refusal(context(rising, side=Side.SHORT), rules) is None
    falling = [minute(i, str(20 - i)) for i in range(4)]  # RSI(2) 0
    assert entry_refusal(context(falling, side=Side.SHORT), rules) == (
        "rsi_max",
        "1-minute RSI(2) 0.00 below 15",
    )
    assert entry_refusal(context(rising[:2]), rules) is None  # no RSI yet: nothing to refuse on


def test_relative_volume_confirmation_by_hand() -> None:
    # 5 minutes gone at 1,000 a minute usual: 5,000; 12,000 traded -> 2.4
    bars = [minute(i, "10", volume=2400) for i in range(5)]

    assert entry_refusal(context(bars), EntryConfirmations(relative_volume_min=D(2))) is None
    assert entry_refusal(context(bars), EntryConfirmations(relative_volume_min=D(3))) == (
        "relative_volume_min",
        "relative volume 2.40 below 3 (session volume against the ADV 390000 pro rata)",
    )


def test_the_trigger_bar_itself_is_not_looked_at() -> None:
    bars = [minute(0, "10"), minute(1, "11"), minute(2, "50", volume=10**6)]
    trigger = EntryContext.at_trigger(
        side=Side.LONG,
        entry=D("10.50"),
        bars=bars,
        adv=D(390_000),
        trigger_bar=OPEN + timedelta(minutes=2),
        opens_at=OPEN,
        closes_at=OPEN + timedelta(minutes=390),
    )

    assert [b.close for b in trigger.bars] == [D(10), D(11)]
    assert trigger.elapsed_minutes == 2
    assert entry_refusal(trigger, EntryConfirmations(above_vwap=True)) is None


@given(st.lists(st.integers(min_value=1, max_value=99), min_size=1, max_size=30))
def test_confirmations_off_never_refuse(closes: list[int]) -> None:
    bars = [minute(i, str(c)) for i, c in enumerate(closes)]

    assert not EntryConfirmations().enabled
    assert entry_refusal(context(bars), EntryConfirmations()) is None
    assert scan_refusal(Side.LONG, D(1), dailies([str(c) for c in closes]), ScanFilters()) is None
