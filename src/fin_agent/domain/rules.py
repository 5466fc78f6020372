"""The strategy's parameters as frozen domain values (validated settings map onto these).

Defaults are the "gap and go" defaults of DESIGN.md section 2; units are in the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal
from enum import StrEnum


class Direction(StrEnum):
    """Which gaps the scanner trades: gap-ups long, gap-downs short, or both."""

    LONG = "long"
    SHORT = "short"
    BOTH = "both"


class LossBasis(StrEnum):
    """What the daily loss limit counts: realised P&L only, or realised plus the open book's
    losses marked at every minute's close."""

    REALISED = "realised"
    MARKED = "marked"


class LossAction(StrEnum):
    """What the daily loss limit does when reached: stop new entries, or also close everything."""

    REDUCE = "reduce"
    FLATTEN = "flatten"


class RankBy(StrEnum):
    """The figure candidates are ranked by (descending); ties are broken by pre-market volume."""

    GAP_PCT = "gap_pct"
    PM_VOLUME = "pm_volume"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanFilters:
    """Indicator filters of the scan, on the daily bars up to the previous session."""

    sma_days: int | None = None
    rsi_period: int = 14
    rsi_max: Decimal | None = None
    rsi_min: Decimal | None = None

    @property
    def history_bars(self) -> int:
        """Daily bars the filters need (0 when all are off)."""
        needs = [0]
        if self.sma_days is not None:
            needs.append(self.sma_days)
        if self.rsi_max is not None or self.rsi_min is not None:
            needs.append(3 * self.rsi_period + 1)  # Wilder smoothing settles
        return max(needs)


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryConfirmations:
    """Checks made when an entry triggers, on the session's minute bars before the trigger bar."""

    above_vwap: bool = False
    rsi_period: int = 14
    rsi_max: Decimal | None = None
    relative_volume_min: Decimal | None = None

    @property
    def enabled(self) -> bool:
        """True when any confirmation is on."""
        return self.above_vwap or self.rsi_max is not None or self.relative_volume_min is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanRules:
    """Filters and ranking of the pre-market gap scan."""

    gap_min_pct: Decimal = Decimal(4)
    gap_max_pct: Decimal = Decimal(40)
    price_min: Decimal = Decimal(2)
    price_max: Decimal = Decimal(500)
    pm_volume_min: int = 50_000
    adv_min: int = 500_000
    min_history_bars: int = 15
    atr_period: int = 14
    atr_lookback_bars: int = 43
    adv_period: int = 20
    catalyst_required: bool = False
    direction: Direction = Direction.LONG
    rank_by: RankBy = RankBy.GAP_PCT
    top_n: int = 5
    split_guard: bool = True
    split_guard_heavy_volume_pct: Decimal = Decimal(25)
    filters: ScanFilters = field(default_factory=ScanFilters)
    catalyst_window_hours: int | None = None  # None: since the previous session's close
    cancel_on_keywords: tuple[str, ...] = ()

    @property
    def history_bars(self) -> int:
        """Daily bars the scan needs per symbol: the history rule, the volume average, the ATR's
        lookback, and what the optional indicator filters need."""
        return max(
            self.min_history_bars,
            self.adv_period,
            self.atr_lookback_bars,
            self.filters.history_bars,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRules:
    """How a candidate becomes a plan: opening range, entry window, stop, target and size."""

    opening_range_minutes: int = 5
    entry_offset: Decimal = Decimal("0.01")
    entry_deadline: time = time(10, 30)
    atr_stop_multiple: Decimal = Decimal("0.5")
    reward_risk: Decimal = Decimal("2.0")
    risk_per_trade_pct: Decimal = Decimal(1)
    max_position_pct: Decimal = Decimal(25)
    flatten_before_close_minutes: int = 5
    confirmations: EntryConfirmations = field(default_factory=EntryConfirmations)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """Limits the risk engine applies before any order."""

    max_open_positions: int = 3
    max_gross_exposure_pct: Decimal = Decimal(100)
    daily_loss_limit_pct: Decimal = Decimal(2)
    max_orders_per_minute: int = 10
    loss_limit_basis: LossBasis = LossBasis.MARKED
    loss_limit_action: LossAction = LossAction.REDUCE
    max_drawdown_pct: Decimal | None = None
    """Halt when equity falls this far below its peak over the stored days (None: off)."""
    error_breaker_count: int = 5
    """Halt at this many order rejections or store failures within the window (0: off)."""
    error_breaker_window_mins: int = 10
    max_var_pct: Decimal | None = None
    """Refuse an entry that takes the open book's one-day VaR over this % of equity (None: off)."""
    var_confidence_pct: int = 95


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCosts:
    """Slippage and commission of the paper broker; both zero reproduces the rules exactly."""

    slippage_bps: Decimal = Decimal(0)
    commission_per_share: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Strategy:
    """Everything the trading day's decisions depend on, in one value."""

    name: str = "gap_and_go"
    scan: ScanRules = ScanRules()
    plan: PlanRules = PlanRules()
    risk: RiskLimits = RiskLimits()
    costs: ExecutionCosts = ExecutionCosts()
