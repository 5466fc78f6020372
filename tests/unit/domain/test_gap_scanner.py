"""GapScanner: each rule, their order, ranking, top_n, shorts, the split guard, and totality."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fin_agent.domain.gap_scanner import (
    SPLIT_RATIOS,
    SPLIT_TOLERANCE,
    Candidate,
    GapScanner,
    Rejection,
    RejectRule,
    ScanResult,
    SymbolSnapshot,
    UniverseSnapshot,
    looks_like_split,
)
from fin_agent.domain.indicators import wilder_atr
from fin_agent.domain.rules import Direction, RankBy, ScanRules
from fin_agent.domain.values import DailyBar, Headline, Premarket, Side, symbol

DAY = date(2024, 1, 2)
TAKEN_AT = datetime(2024, 1, 2, 14, 0, tzinfo=UTC)  # 09:00 ET
HALF = Decimal("0.5")


def daily_bars(name: str, count: int, close: Decimal, volume: int) -> tuple[DailyBar, ...]:
    """`count` sessions closing at `close` with a 1.00 range: every true range (and ATR) is 1.00."""
    first = DAY - timedelta(days=count)
    return tuple(
        DailyBar(
            symbol=symbol(name),
            session=first + timedelta(days=i),
            open=close,
            high=close + HALF,
            low=close - HALF,
            close=close,
            volume=volume,
        )
        for i in range(count)
    )


def snap(
    name: str,
    *,
    prev_close: str = "10.00",
    pm_last: str = "11.00",
    pm_volume: int | None = 100_000,
    bars: int = 20,
    daily_volume: int = 1_000_000,
    headlines: tuple[str, ...] = (),
    premarket: bool = True,
) -> SymbolSnapshot:
    sym = symbol(name)
    return SymbolSnapshot(
        symbol=sym,
        daily_bars=daily_bars(name, bars, Decimal(prev_close), daily_volume),
        premarket=(
            Premarket(symbol=sym, last=Decimal(pm_last), volume=pm_volume, as_of=TAKEN_AT)
            if premarket
            else None
        ),
        headlines=tuple(
            Headline(
                symbol=sym,
                title=title,
                source="wire",
                published_at=TAKEN_AT - timedelta(hours=1),
            )
            for title in headlines
        ),
    )


def scan(*items: SymbolSnapshot, rules: ScanRules | None = None) -> ScanResult:
    universe = UniverseSnapshot(day=DAY, taken_at=TAKEN_AT, symbols=items)
    return GapScanner(rules or ScanRules()).scan(universe)


def only_rejection(result: ScanResult) -> Rejection:
    assert result.candidates == ()
    assert len(result.rejections) == 1
    return result.rejections[0]


def only_candidate(result: ScanResult) -> Candidate:
    assert result.rejections == ()
    assert len(result.candidates) == 1
    return result.candidates[0]


# --- each rule, with its exact rule and message ---------------------------------------------------


def test_scanner_rejects_no_data_when_there_are_no_daily_bars() -> None:
    rejection = only_rejection(scan(snap("AAA", bars=0)))

    assert rejection.rule is RejectRule.NO_DATA
    assert rejection.detail == "no previous close (no daily bars)"
    assert rejection.gap_pct is None


def test_scanner_rejects_no_data_without_a_premarket_price() -> None:
    rejection = only_rejection(scan(snap("AAA", premarket=False)))

    assert rejection.rule is RejectRule.NO_DATA
    assert rejection.detail == "no pre-market price"


@pytest.mark.parametrize(
    ("prev_close", "pm_last", "detail"),
    [
        ("3.00", "2.30", "gap -23.33% outside the long band 4%..40%"),
        ("100.00", "103.99", "gap 3.99% outside the long band 4%..40%"),
        ("100.00", "140.01", "gap 40.01% outside the long band 4%..40%"),
        ("100.00", "100.00", "gap 0.00% outside the long band 4%..40%"),
    ],
)
def test_scanner_rejects_gaps_outside_the_band(prev_close: str, pm_last: str, detail: str) -> None:
    rejection = only_rejection(scan(snap("AAA", prev_close=prev_close, pm_last=pm_last)))

    assert rejection.rule is RejectRule.GAP_BAND
    assert rejection.detail == detail


@pytest.mark.parametrize("pm_last", ["104.00", "140.00"])
def test_scanner_accepts_gaps_on_the_band_edges(pm_last: str) -> None:
    candidate = only_candidate(scan(snap("AAA", prev_close="100.00", pm_last=pm_last)))

    assert candidate.gap_pct == Decimal(pm_last) - Decimal(100)


@pytest.mark.parametrize(
    ("prev_close", "pm_last", "detail"),
    [
        ("1.80", "1.99", "pre-market price 1.99 outside 2..500"),
        ("450.00", "500.01", "pre-market price 500.01 outside 2..500"),
    ],
)
def test_scanner_rejects_premarket_prices_outside_the_price_band(
    prev_close: str, pm_last: str, detail: str
) -> None:
    rejection = only_rejection(scan(snap("AAA", prev_close=prev_close, pm_last=pm_last)))

    assert rejection.rule is RejectRule.PRICE_BAND
    assert rejection.detail == detail


@pytest.mark.parametrize(("prev_close", "pm_last"), [("1.80", "2.00"), ("450.00", "500.00")])
def test_scanner_accepts_prices_on_the_band_edges(prev_close: str, pm_last: str) -> None:
    only_candidate(scan(snap("AAA", prev_close=prev_close, pm_last=pm_last)))


def test_scanner_rejects_premarket_volume_below_the_minimum() -> None:
    rejection = only_rejection(scan(snap("AAA", pm_volume=49_999)))

    assert rejection.rule is RejectRule.PM_VOLUME
    assert rejection.detail == "pre-market volume 49999 below 50000"
    assert rejection.gap_pct == Decimal(10)


def test_scanner_accepts_premarket_volume_at_the_minimum() -> None:
    candidate = only_candidate(scan(snap("AAA", pm_volume=50_000)))

    assert candidate.skipped_rules == ()


def test_scanner_skips_and_records_the_pm_volume_rule_without_premarket_volume() -> None:
    candidate = only_candidate(scan(snap("AAA", pm_volume=None)))

    assert candidate.pm_volume is None
    assert candidate.skipped_rules == (RejectRule.PM_VOLUME,)


def test_scanner_rejects_short_history() -> None:
    rejection = only_rejection(scan(snap("AAA", bars=14)))

    assert rejection.rule is RejectRule.HISTORY
    assert rejection.detail == "14 prior daily bars, 15 needed"


def test_scanner_history_message_names_the_configured_minimum() -> None:
    rejection = only_rejection(scan(snap("AAA", bars=16), rules=ScanRules(min_history_bars=20)))

    assert rejection.rule is RejectRule.HISTORY
    assert rejection.detail == "16 prior daily bars, 20 needed"


def test_scanner_accepts_exactly_the_minimum_history() -> None:
    candidate = only_candidate(scan(snap("AAA", bars=15)))

    assert candidate.history_bars == 15


def test_scanner_rejects_low_average_daily_volume() -> None:
    rejection = only_rejection(scan(snap("AAA", daily_volume=499_999)))

    assert rejection.rule is RejectRule.ADV
    assert rejection.detail == "average daily volume 499999 below 500000"


def test_scanner_rejects_without_a_headline_when_a_catalyst_is_required() -> None:
    rules = ScanRules(catalyst_required=True)

    rejection = only_rejection(scan(snap("AAA"), rules=rules))

    assert rejection.rule is RejectRule.CATALYST
    assert rejection.detail == "no headline in the news window; a catalyst is required"


def test_scanner_accepts_a_headline_as_the_catalyst() -> None:
    rules = ScanRules(catalyst_required=True)

    candidate = only_candidate(scan(snap("AAA", headlines=("old", "FDA approval")), rules=rules))

    assert candidate.headline_count == 2
    assert candidate.top_headline == "FDA approval"


def test_candidate_records_the_figures_that_let_it_pass() -> None:
    candidate = only_candidate(scan(snap("AAA", prev_close="10.00", pm_last="11.00")))

    assert candidate == Candidate(
        symbol=symbol("AAA"),
        rank=1,
        side=Side.LONG,
        prev_close=Decimal("10.00"),
        pm_last=Decimal("11.00"),
        pm_volume=100_000,
        gap_pct=Decimal(10),
        atr=Decimal(1),
        adv=Decimal(1_000_000),
        history_bars=20,
        headline_count=0,
        top_headline=None,
        skipped_rules=(),
    )


# --- rule order: the first failing rule wins ------------------------------------------------------

RULE_ORDER = (
    RejectRule.SPLIT_GUARD,
    RejectRule.GAP_BAND,
    RejectRule.PRICE_BAND,
    RejectRule.PM_VOLUME,
    RejectRule.HISTORY,
    RejectRule.ADV,
    RejectRule.CATALYST,
)


def failing_from(first: int, *, premarket: bool = True) -> SymbolSnapshot:
    """A snapshot that fails RULE_ORDER[first] and every rule after it, and none before."""
    fails = set(RULE_ORDER[first:])
    prev, last = "10.00", "11.00"  # +10 %
    if RejectRule.PRICE_BAND in fails:
        prev, last = "1.50", "1.65"  # +10 % but below $2
    if RejectRule.GAP_BAND in fails:
        last = "1.53" if RejectRule.PRICE_BAND in fails else "10.20"  # +2 %
    if RejectRule.SPLIT_GUARD in fails:
        last = "1.00"  # 2/3 of 1.50: a 3:2 split, also out of the long band and below $2
    return snap(
        "AAA",
        prev_close=prev,
        pm_last=last,
        pm_volume=10 if RejectRule.PM_VOLUME in fails else 100_000,
        bars=10 if RejectRule.HISTORY in fails else 20,
        daily_volume=1_000 if RejectRule.ADV in fails else 1_000_000,
        headlines=() if RejectRule.CATALYST in fails else ("news",),
        premarket=premarket,
    )


@pytest.mark.parametrize("first", range(len(RULE_ORDER)), ids=[r.value for r in RULE_ORDER])
def test_scanner_rejects_by_the_first_failing_rule_in_order(first: int) -> None:
    rules = ScanRules(catalyst_required=True)

    rejection = only_rejection(scan(failing_from(first), rules=rules))

    assert rejection.rule is RULE_ORDER[first]


def test_scanner_checks_data_presence_before_every_other_rule() -> None:
    rules = ScanRules(catalyst_required=True)

    rejection = only_rejection(scan(failing_from(0, premarket=False), rules=rules))

    assert rejection.rule is RejectRule.NO_DATA


def test_scanner_accepts_a_snapshot_failing_no_rule() -> None:
    only_candidate(scan(failing_from(len(RULE_ORDER)), rules=ScanRules(catalyst_required=True)))


# --- ranking and top_n ----------------------------------------------------------------------------


def test_scanner_ranks_candidates_by_gap_descending() -> None:
    result = scan(
        snap("AAA", pm_last="11.00"),  # +10 %
        snap("BBB", pm_last="12.00"),  # +20 %
        snap("CCC", pm_last="11.50"),  # +15 %
    )

    assert [(c.symbol, c.rank) for c in result.candidates] == [("BBB", 1), ("CCC", 2), ("AAA", 3)]


def test_scanner_breaks_gap_ties_by_premarket_volume() -> None:
    result = scan(
        snap("AAA", pm_volume=60_000),
        snap("BBB", pm_volume=90_000),
        snap("CCC", pm_volume=None),  # counts as 0 for the tie-break
    )

    assert [c.symbol for c in result.candidates] == ["BBB", "AAA", "CCC"]


def test_scanner_breaks_full_ties_by_symbol() -> None:
    result = scan(snap("BBB"), snap("AAA"))

    assert [c.symbol for c in result.candidates] == ["AAA", "BBB"]


def test_scanner_ranks_by_premarket_volume_when_configured() -> None:
    rules = ScanRules(rank_by=RankBy.PM_VOLUME)

    result = scan(
        snap("AAA", pm_last="12.00", pm_volume=60_000),
        snap("BBB", pm_last="11.00", pm_volume=90_000),
        snap("CCC", pm_last="11.50", pm_volume=90_000),  # ties on volume, larger gap first
        rules=rules,
    )

    assert [c.symbol for c in result.candidates] == ["CCC", "BBB", "AAA"]


def test_scanner_rejects_candidates_beyond_top_n_with_the_rank_rule() -> None:
    rules = ScanRules(top_n=2)

    result = scan(
        snap("AAA", pm_last="11.00"),
        snap("BBB", pm_last="12.00"),
        snap("CCC", pm_last="11.50"),
        rules=rules,
    )

    assert [(c.symbol, c.rank) for c in result.candidates] == [("BBB", 1), ("CCC", 2)]
    assert result.rejections == (
        Rejection(
            symbol=symbol("AAA"),
            rule=RejectRule.RANK,
            detail="passed every rule but ranked 3; scan.top_n is 2",
            gap_pct=Decimal(10),
        ),
    )


def test_scanner_lists_rejections_by_symbol() -> None:
    result = scan(snap("CCC", bars=0), snap("AAA", bars=0), snap("BBB", bars=0))

    assert [r.symbol for r in result.rejections] == ["AAA", "BBB", "CCC"]
    assert result.day == DAY
    assert result.taken_at == TAKEN_AT


# --- short direction ------------------------------------------------------------------------------


def test_scanner_takes_gap_downs_short_when_direction_is_short() -> None:
    rules = ScanRules(direction=Direction.SHORT)

    candidate = only_candidate(scan(snap("AAA", prev_close="10.00", pm_last="9.00"), rules=rules))

    assert candidate.side is Side.SHORT
    assert candidate.gap_pct == Decimal(-10)


def test_scanner_rejects_gap_ups_when_direction_is_short() -> None:
    rules = ScanRules(direction=Direction.SHORT)

    rejection = only_rejection(scan(snap("AAA", pm_last="11.00"), rules=rules))

    assert rejection.rule is RejectRule.GAP_BAND
    assert rejection.detail == "gap 10.00% outside the short band 4%..40%"


@pytest.mark.parametrize(
    ("pm_last", "detail"),
    [
        ("9.61", "gap -3.90% outside the short band 4%..40%"),
        ("5.99", "gap -40.10% outside the short band 4%..40%"),
    ],
)
def test_scanner_applies_the_band_to_the_size_of_a_gap_down(pm_last: str, detail: str) -> None:
    rules = ScanRules(direction=Direction.SHORT)

    rejection = only_rejection(scan(snap("AAA", pm_last=pm_last), rules=rules))

    assert rejection.rule is RejectRule.GAP_BAND
    assert rejection.detail == detail


def test_scanner_ranks_shorts_by_the_size_of_the_gap() -> None:
    rules = ScanRules(direction=Direction.BOTH)

    result = scan(
        snap("AAA", pm_last="9.00"),  # -10 %
        snap("BBB", pm_last="8.10"),  # -19 % (8.00 would be a 4:5 split ratio)
        snap("CCC", pm_last="11.50"),  # +15 %
        rules=rules,
    )

    assert [(c.symbol, c.side) for c in result.candidates] == [
        ("BBB", Side.SHORT),
        ("CCC", Side.LONG),
        ("AAA", Side.SHORT),
    ]


# --- the ATR's lookback (DESIGN 2.1) ------------------------------------------------------------


def test_the_atr_is_taken_over_the_last_atr_lookback_bars_only() -> None:
    # 17 wide sessions (range 5.00) then 43 quiet ones (range 1.00): over the last 43 bars every
    # true range is 1.00, so the ATR is exactly 1.00 however much older history the data holds.
    quiet = snap("AAA", bars=60)
    wide = tuple(
        replace(b, high=b.close + 5 * HALF, low=b.close - 5 * HALF) if i < 17 else b
        for i, b in enumerate(quiet.daily_bars)
    )
    item = replace(quiet, daily_bars=wide)

    default = only_candidate(scan(item))
    longer = only_candidate(scan(item, rules=ScanRules(atr_lookback_bars=50)))

    assert default.atr == Decimal(1)
    assert default.history_bars == 60
    assert longer.atr == wilder_atr(wide[-50:], 14)
    assert longer.atr > Decimal(1)


# --- split guard ----------------------------------------------------------------------------------


def test_split_guard_flags_a_seven_for_one_split() -> None:
    # 70.00 -> 10.01 is -85.70 %, within 0.25 % of the 1/7 price ratio
    rejection = only_rejection(scan(snap("AAA", prev_close="70.00", pm_last="10.01")))

    assert rejection.rule is RejectRule.SPLIT_GUARD
    assert rejection.detail == (
        "gap -85.70% matches a 7:1 split ratio; unadjusted data, not a gap "
        "(turn off scan.split_guard to trade it)"
    )


def test_split_guard_flags_a_three_for_two_split_even_for_a_short_scan() -> None:
    rules = ScanRules(direction=Direction.SHORT)

    # 30.00 -> 20.01 is -33.30 %, within 0.25 % of the 2/3 price ratio, and inside the short band
    rejection = only_rejection(scan(snap("AAA", prev_close="30.00", pm_last="20.01"), rules=rules))

    assert rejection.rule is RejectRule.SPLIT_GUARD
    assert rejection.detail.startswith("gap -33.30% matches a 3:2 split ratio;")


def test_split_guard_lets_a_real_twelve_percent_gap_through() -> None:
    candidate = only_candidate(scan(snap("AAA", prev_close="10.00", pm_last="11.20")))

    assert candidate.gap_pct == Decimal(12)


def test_split_guard_flags_a_one_for_seven_reverse_split() -> None:
    rules = ScanRules(gap_max_pct=Decimal(1000))

    # 2.00 -> 14.00 is +600 %: the 7x price ratio of a 1:7 reverse split
    rejection = only_rejection(scan(snap("AAA", prev_close="2.00", pm_last="14.00"), rules=rules))

    assert rejection.rule is RejectRule.SPLIT_GUARD
    assert rejection.detail.startswith("gap 600.00% matches a 1:7 split ratio;")


@pytest.mark.parametrize("reverse", range(2, 51))
def test_split_guard_knows_every_reverse_split_from_one_for_two_to_one_for_fifty(
    reverse: int,
) -> None:
    assert looks_like_split(Decimal("1.00"), Decimal(reverse)) == Fraction(reverse)
    # the pre-market print is rarely exact: 0.2 % off still names the ratio
    assert looks_like_split(Decimal("1.00"), Decimal(reverse) * Decimal("1.002")) == reverse


@pytest.mark.parametrize(
    ("pm_last", "ratio"),
    [("20.00", "3:2"), ("22.50", "4:3"), ("24.00", "5:4"), ("15.00", "2:1")],
)
def test_direction_both_trades_a_real_gap_down_at_a_split_ratio_on_heavy_volume(
    pm_last: str, ratio: str
) -> None:
    # UA, RUBI, CYTR, PTX and UNFI (2017) gapped down -20 % to -50 % on news; with heavy volume
    # (here 40 % of the ADV before the open) the guard lets such a gap through as a short.
    rules = ScanRules(direction=Direction.BOTH, gap_max_pct=Decimal(60))
    heavy = snap("AAA", prev_close="30.00", pm_last=pm_last, pm_volume=400_000)
    light = snap("AAA", prev_close="30.00", pm_last=pm_last, pm_volume=60_000)

    candidate = only_candidate(scan(heavy, rules=rules))
    quiet = only_rejection(scan(light, rules=rules))

    assert candidate.side is Side.SHORT
    assert quiet.rule is RejectRule.SPLIT_GUARD
    assert f"matches a {ratio} split ratio" in quiet.detail


def test_split_guard_lets_a_gap_at_a_split_ratio_through_on_heavy_premarket_volume() -> None:
    rules = ScanRules(direction=Direction.BOTH)

    # -33.30 % is the 3:2 ratio, but 300,000 shares before the open is 30 % of the ADV: news
    candidate = only_candidate(
        scan(snap("AAA", prev_close="30.00", pm_last="20.01", pm_volume=300_000), rules=rules)
    )

    assert candidate.side is Side.SHORT


def test_split_guard_still_flags_the_ratio_on_ordinary_premarket_volume() -> None:
    rules = ScanRules(direction=Direction.BOTH, split_guard_heavy_volume_pct=Decimal(25))

    # 240,000 shares is 24 % of the 1,000,000 ADV: below the 25 % that would make it news
    rejection = only_rejection(
        scan(snap("AAA", prev_close="30.00", pm_last="20.01", pm_volume=240_000), rules=rules)
    )

    assert rejection.rule is RejectRule.SPLIT_GUARD


def test_split_guard_can_be_turned_off() -> None:
    rules = ScanRules(direction=Direction.SHORT, split_guard=False)

    candidate = only_candidate(scan(snap("AAA", prev_close="30.00", pm_last="20.01"), rules=rules))

    assert candidate.side is Side.SHORT


@pytest.mark.parametrize(
    ("prev_close", "last", "ratio"),
    [
        ("70.00", "10.00", Fraction(1, 7)),  # 7:1, exact: -85.71 %
        ("70.00", "10.01", Fraction(1, 7)),  # 7:1 with a small move: -85.70 %
        ("30.00", "20.01", Fraction(2, 3)),  # 3:2: -33.30 %
        ("3.00", "30.00", Fraction(10)),  # 1:10 reverse split: +900 %
    ],
)
def test_looks_like_split_names_the_ratio(prev_close: str, last: str, ratio: Fraction) -> None:
    assert looks_like_split(Decimal(prev_close), Decimal(last)) == ratio


@pytest.mark.parametrize(("prev_close", "last"), [("10.00", "11.20"), ("10.00", "9.00")])
def test_looks_like_split_ignores_ordinary_gaps(prev_close: str, last: str) -> None:
    assert looks_like_split(Decimal(prev_close), Decimal(last)) is None


# --- totality -------------------------------------------------------------------------------------

# the daily bars' low is prev_close - 0.50, which must stay positive
prev_closes = st.decimals(min_value=Decimal("0.51"), max_value=Decimal(800), places=2)
pm_prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(800), places=2)


@st.composite
def snapshots(draw: st.DrawFn, name: str) -> SymbolSnapshot:
    return snap(
        name,
        prev_close=str(draw(prev_closes)),
        pm_last=str(draw(pm_prices)),
        pm_volume=draw(st.none() | st.integers(min_value=0, max_value=200_000)),
        bars=draw(st.integers(min_value=0, max_value=25)),
        daily_volume=draw(st.integers(min_value=0, max_value=2_000_000)),
        headlines=draw(st.lists(st.just("news"), max_size=2).map(tuple)),
        premarket=draw(st.booleans()),
    )


@st.composite
def universes(draw: st.DrawFn) -> tuple[SymbolSnapshot, ...]:
    names = draw(st.lists(st.from_regex(r"[A-Z]{1,4}", fullmatch=True), unique=True, max_size=12))
    return tuple(draw(snapshots(name)) for name in names)


@given(
    items=universes(),
    top_n=st.integers(min_value=1, max_value=6),
    direction=st.sampled_from(Direction),
    catalyst_required=st.booleans(),
)
def test_scanner_puts_every_symbol_in_exactly_one_list(
    items: tuple[SymbolSnapshot, ...], top_n: int, direction: Direction, catalyst_required: bool
) -> None:
    rules = ScanRules(top_n=top_n, direction=direction, catalyst_required=catalyst_required)

    result = scan(*items, rules=rules)

    seen = [c.symbol for c in result.candidates] + [r.symbol for r in result.rejections]
    assert sorted(seen) == sorted(item.symbol for item in items)
    assert len(result.candidates) <= top_n
    assert [c.rank for c in result.candidates] == list(range(1, len(result.candidates) + 1))
    moves = [abs(c.gap_pct) for c in result.candidates]
    assert moves == sorted(moves, reverse=True)


def _split_by_definition(prev_close: Decimal, last: Decimal) -> Fraction | None:
    """The split guard's rule written plainly: the first ratio within tolerance."""
    ratio = last / prev_close
    for split in SPLIT_RATIOS:
        expected = Decimal(split.numerator) / Decimal(split.denominator)
        if abs(ratio - expected) <= expected * SPLIT_TOLERANCE:
            return split
    return None


@given(
    prev=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5000), places=4),
    ratio=st.sampled_from(SPLIT_RATIOS),
    offset=st.decimals(min_value=Decimal("-0.004"), max_value=Decimal("0.004"), places=6),
)
def test_looks_like_split_agrees_with_its_plain_definition_near_every_ratio(
    prev: Decimal, ratio: Fraction, offset: Decimal
) -> None:
    expected = Decimal(ratio.numerator) / Decimal(ratio.denominator)
    last = (prev * expected * (1 + offset)).quantize(Decimal("0.0001"))
    if last > 0:
        assert looks_like_split(prev, last) == _split_by_definition(prev, last)


@given(
    prev=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5000), places=4),
    last=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5000), places=4),
)
def test_looks_like_split_agrees_with_its_plain_definition_anywhere(
    prev: Decimal, last: Decimal
) -> None:
    assert looks_like_split(prev, last) == _split_by_definition(prev, last)
