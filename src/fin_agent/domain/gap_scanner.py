"""`GapScanner`: a universe snapshot in, ranked gap candidates and reasoned rejections out.

Rules run in a fixed order and a symbol is rejected by the first it fails: data present, split
guard, gap band (with direction), price band, pre-market volume, history, average volume, catalyst,
and the optional indicator filters (`ScanFilters`, off by default).
Candidates beyond `top_n` are rejected by the `rank` rule. Every symbol ends up in exactly one list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from fin_agent.domain.indicators import average_volume, wilder_atr
from fin_agent.domain.prev_close import PrevClose, missing_detail, previous_close
from fin_agent.domain.rules import Direction, RankBy, ScanRules
from fin_agent.domain.scan_filters import scan_refusal
from fin_agent.domain.values import DailyBar, Headline, Premarket, Side, Symbol

HUNDRED = Decimal(100)

# Price ratios (new / old) a stock split or reverse split produces; a gap this close to one is
# almost always a split the data did not adjust for, not a move to trade.
# Forward splits (2:1 .. 20:1, 3:2, 4:3, 5:4) and every reverse split from 1:2 to 1:50 (a reverse
# split's ratio is whatever the board chose: 1:9, 1:35 and 1:45 happen as well as 1:10 or 1:50).
# A fallback only: a gap on heavy pre-market volume is never taken for a split (`_heavy`).
SPLIT_RATIOS: tuple[Fraction, ...] = tuple(
    sorted(
        {Fraction(1, n) for n in (2, 3, 4, 5, 7, 8, 10, 15, 20)}
        | {Fraction(2, 3), Fraction(3, 4), Fraction(4, 5)}
        | {Fraction(n) for n in range(2, 51)}
    )
)
SPLIT_TOLERANCE = Decimal("0.0025")
# Each ratio as a Decimal and a float: a float check a little wider than the tolerance skips the
# ratios far off, and the Decimal check alone decides (7,000 symbols a scan).
_SPLITS = tuple(
    (split, expected, float(expected))
    for split in SPLIT_RATIOS
    for expected in (Decimal(split.numerator) / Decimal(split.denominator),)
)
_NEAR = float(SPLIT_TOLERANCE) * 1.001
# No split ratio lies between these two (4:5 and 2:1 as released): most gaps end here at once.
_NO_SPLIT_ABOVE = max(a for _, _, a in _SPLITS if a < 1) * (1 + _NEAR)
_NO_SPLIT_BELOW = min(a for _, _, a in _SPLITS if a > 1) * (1 - _NEAR)


class RejectRule(StrEnum):
    """The rule a rejected symbol failed first."""

    NO_DATA = "no_data"
    SPLIT_GUARD = "split_guard"
    GAP_BAND = "gap_band"
    PRICE_BAND = "price_band"
    PM_VOLUME = "pm_volume"
    HISTORY = "history"
    ADV = "adv"
    CATALYST = "catalyst"
    RANK = "rank"
    INDICATOR = "indicator"


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolSnapshot:
    """What the scan knows about one symbol at scan time."""

    symbol: Symbol
    daily_bars: tuple[DailyBar, ...]
    premarket: Premarket | None
    headlines: tuple[Headline, ...] = ()

    def prev_close(self, prev_session: date | None) -> PrevClose | None:
        """Close of the previous regular session (`prev_session`), by `domain.prev_close`'s rule:
        its daily bar, else the quote's previous close, else None."""
        quoted = self.premarket.quoted_prev_close if self.premarket else None
        return previous_close(daily_bars=self.daily_bars, quoted=quoted, prev_session=prev_session)


@dataclass(frozen=True, slots=True, kw_only=True)
class UniverseSnapshot:
    """The whole universe at scan time; `prev_session` is the session before `day` (None when
    unknown), whose close every gap is measured from."""

    day: date
    taken_at: datetime
    symbols: tuple[SymbolSnapshot, ...]
    prev_session: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A symbol that passed every rule, with the figures that let it pass."""

    symbol: Symbol
    rank: int
    side: Side
    prev_close: Decimal
    pm_last: Decimal
    pm_volume: int | None
    gap_pct: Decimal
    atr: Decimal
    adv: Decimal
    history_bars: int
    headline_count: int
    top_headline: str | None
    skipped_rules: tuple[RejectRule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """A symbol that failed a rule, which rule, and why in words."""

    symbol: Symbol
    rule: RejectRule
    detail: str
    gap_pct: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanResult:
    """Ranked candidates and every rejection of one scan."""

    day: date
    taken_at: datetime
    candidates: tuple[Candidate, ...]
    rejections: tuple[Rejection, ...]


def gap_pct(prev_close: Decimal, last: Decimal) -> Decimal:
    """Percentage move from the previous close to `last`."""
    return HUNDRED * (last - prev_close) / prev_close


def looks_like_split(prev_close: Decimal, last: Decimal) -> Fraction | None:
    """The split ratio `last / prev_close` is within tolerance of, or None."""
    ratio = last / prev_close
    near = float(ratio)
    if _NO_SPLIT_ABOVE < near < _NO_SPLIT_BELOW:
        return None
    for split, expected, approx in _SPLITS:
        if abs(near - approx) <= approx * _NEAR and abs(ratio - expected) <= (
            expected * SPLIT_TOLERANCE
        ):
            return split
    return None


class GapScanner:
    """Applies the scan rules of a strategy to a universe snapshot."""

    def __init__(self, rules: ScanRules) -> None:
        self._rules = rules
        # the rules' part of the commonest detail, written once (7,000 symbols a scan)
        self._gap_band = (
            f"outside the {rules.direction} band {rules.gap_min_pct}%..{rules.gap_max_pct}%"
        )

    def scan(self, snapshot: UniverseSnapshot) -> ScanResult:
        """Return the top candidates, ranked, and a rejection for every other symbol."""
        passed: list[Candidate] = []
        rejections: list[Rejection] = []
        for item in sorted(snapshot.symbols, key=lambda s: s.symbol):
            outcome = self._evaluate(item, snapshot.prev_session)
            if isinstance(outcome, Candidate):
                passed.append(outcome)
            else:
                rejections.append(outcome)
        ranked = sorted(passed, key=self._rank_key)
        top = tuple(replace(c, rank=i) for i, c in enumerate(ranked[: self._rules.top_n], start=1))
        for i, extra in enumerate(ranked[self._rules.top_n :], start=self._rules.top_n + 1):
            rejections.append(
                Rejection(
                    symbol=extra.symbol,
                    rule=RejectRule.RANK,
                    detail=f"passed every rule but ranked {i}; scan.top_n is {self._rules.top_n}",
                    gap_pct=extra.gap_pct,
                )
            )
        rejections.sort(key=lambda r: r.symbol)
        return ScanResult(
            day=snapshot.day,
            taken_at=snapshot.taken_at,
            candidates=top,
            rejections=tuple(rejections),
        )

    def _rank_key(self, c: Candidate) -> tuple[Decimal, Decimal, str]:
        """Sort key: primary figure descending, the other descending, then symbol for stability."""
        volume = Decimal(c.pm_volume or 0)
        move = abs(c.gap_pct)
        if self._rules.rank_by is RankBy.PM_VOLUME:
            return (-volume, -move, c.symbol)
        return (-move, -volume, c.symbol)

    def _evaluate(self, item: SymbolSnapshot, prev_session: date | None) -> Candidate | Rejection:
        rules = self._rules
        close, pm = item.prev_close(prev_session), item.premarket
        if close is None:
            detail = missing_detail(daily_bars=item.daily_bars, prev_session=prev_session)
            return Rejection(symbol=item.symbol, rule=RejectRule.NO_DATA, detail=detail)
        if pm is None:
            return Rejection(
                symbol=item.symbol, rule=RejectRule.NO_DATA, detail="no pre-market price"
            )
        prev_close = close.price
        gap = gap_pct(prev_close, pm.last)

        def reject(rule: RejectRule, detail: str) -> Rejection:
            return Rejection(symbol=item.symbol, rule=rule, detail=detail, gap_pct=gap)

        if (
            rules.split_guard
            and (split := looks_like_split(prev_close, pm.last)) is not None
            and not self._heavy(item)
        ):
            return reject(
                RejectRule.SPLIT_GUARD,
                f"gap {gap:.2f}% matches a {split.denominator}:{split.numerator} split ratio; "
                "unadjusted data, not a gap (turn off scan.split_guard to trade it)",
            )
        side = self._side_for(gap)
        move = abs(gap)
        if side is None or not rules.gap_min_pct <= move <= rules.gap_max_pct:
            return reject(RejectRule.GAP_BAND, f"gap {gap:.2f}% {self._gap_band}")
        if not rules.price_min <= pm.last <= rules.price_max:
            return reject(
                RejectRule.PRICE_BAND,
                f"pre-market price {pm.last} outside {rules.price_min}..{rules.price_max}",
            )
        skipped: list[RejectRule] = []
        if pm.volume is None:
            skipped.append(RejectRule.PM_VOLUME)
        elif pm.volume < rules.pm_volume_min:
            return reject(
                RejectRule.PM_VOLUME,
                f"pre-market volume {pm.volume} below {rules.pm_volume_min}",
            )
        history = len(item.daily_bars)
        # DESIGN 2.1: over the last atr_lookback_bars bars only, so the ATR (and every stop) does
        # not depend on where a data file starts or on what history an indicator filter reads.
        atr = wilder_atr(item.daily_bars[-rules.atr_lookback_bars :], rules.atr_period)
        if history < rules.min_history_bars or atr is None:
            need = max(rules.min_history_bars, rules.atr_period + 1)
            return reject(RejectRule.HISTORY, f"{history} prior daily bars, {need} needed")
        adv = average_volume(item.daily_bars, rules.adv_period)
        if adv is None or adv < rules.adv_min:
            return reject(RejectRule.ADV, f"average daily volume {adv:.0f} below {rules.adv_min}")
        if rules.catalyst_required and not item.headlines:
            return reject(
                RejectRule.CATALYST, "no headline in the news window; a catalyst is required"
            )
        refused = scan_refusal(side, pm.last, item.daily_bars, rules.filters)
        if refused is not None:
            return reject(RejectRule.INDICATOR, refused)
        return Candidate(
            symbol=item.symbol,
            rank=0,
            side=side,
            prev_close=prev_close,
            pm_last=pm.last,
            pm_volume=pm.volume,
            gap_pct=gap,
            atr=atr,
            adv=adv,
            history_bars=history,
            headline_count=len(item.headlines),
            top_headline=item.headlines[-1].title if item.headlines else None,
            skipped_rules=tuple(skipped),
        )

    def _heavy(self, item: SymbolSnapshot) -> bool:
        """Pre-market volume of at least `split_guard_heavy_volume_pct` of the average daily
        volume: a gap people trade that hard is news, not a split the data left unadjusted."""
        pm = item.premarket
        if pm is None or pm.volume is None:
            return False
        adv = average_volume(item.daily_bars, self._rules.adv_period)
        if adv is None or adv <= 0:
            return False
        return Decimal(pm.volume) * HUNDRED >= adv * self._rules.split_guard_heavy_volume_pct

    def _side_for(self, gap: Decimal) -> Side | None:
        direction = self._rules.direction
        if gap > 0 and direction in (Direction.LONG, Direction.BOTH):
            return Side.LONG
        if gap < 0 and direction in (Direction.SHORT, Direction.BOTH):
            return Side.SHORT
        return None


def candidate_symbols(result: ScanResult) -> Sequence[Symbol]:
    """The symbols of a scan's candidates, in rank order."""
    return [c.symbol for c in result.candidates]
