"""The strategy sections of the settings (account, scan, plan, risk, execution).

Every model forbids unknown keys, bounds every number, describes every field and checks that
related fields agree; the runtime sections are in `config.runtime`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fin_agent.app.config.fields import (
    SESSION_CLOSE,
    SESSION_OPEN,
    ClockTime,
)
from fin_agent.app.config.problems import ConfigProblem, problem, raise_if
from fin_agent.domain.errors import DataError
from fin_agent.domain.rules import Direction, LossAction, LossBasis, RankBy
from fin_agent.domain.values import symbol

PREVIOUS_CLOSE = "previous_close"
MAX_WINDOW_HOURS = 168


def _window_hours(text: str) -> int | None:
    digits = text.strip().lower().removesuffix("h")
    return int(digits) if text.strip().lower().endswith("h") and digits.isdigit() else None


class SettingsSection(BaseModel):
    """Base of every settings section: unknown keys refused, frozen, defaults validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class AccountSettings(SettingsSection):
    """The trading account."""

    starting_equity: Decimal = Field(
        default=Decimal(100_000),
        gt=0,
        le=Decimal(10**12),
        description="Equity at the start of the first trading day, in USD.",
    )


class ScanFilterSettings(SettingsSection):
    """Optional indicator filters of the scan, on daily bars up to the previous session; each
    null is off (the default), and a symbol it refuses is rejected with rule `indicator`."""

    sma_days: int | None = Field(
        default=None,
        ge=2,
        le=250,
        description="Keep a gap only if its pre-market price is above the SMA of this many daily "
        "closes (below, for a short); null: off.",
    )
    rsi_period: int = Field(
        default=14, ge=2, le=100, description="Daily closes in the Wilder RSI of rsi_min/rsi_max."
    )
    rsi_max: Decimal | None = Field(
        default=None, gt=0, lt=100, description="Highest daily RSI kept; null: off."
    )
    rsi_min: Decimal | None = Field(
        default=None, gt=0, lt=100, description="Lowest daily RSI kept; null: off."
    )

    @model_validator(mode="after")
    def _band(self) -> Self:
        if self.rsi_min is not None and self.rsi_max is not None and self.rsi_min >= self.rsi_max:
            raise_if(
                [
                    problem(
                        ("rsi_min",),
                        f"scan.filters.rsi_min ({self.rsi_min}) must be below "
                        f"scan.filters.rsi_max ({self.rsi_max})",
                        "lower scan.filters.rsi_min or raise scan.filters.rsi_max",
                    )
                ]
            )
        return self


class EntryConfirmationSettings(SettingsSection):
    """Optional checks when an entry triggers, on the session's 1-minute bars before the trigger
    bar; all off by default. A refusal is recorded (plan.rejected, reason confirmation:<rule>)
    and the plan stays armed until the entry deadline."""

    above_vwap: bool = Field(
        default=False,
        description="Enter a long only at or above the session VWAP (a short at or below).",
    )
    rsi_period: int = Field(
        default=14, ge=2, le=100, description="1-minute closes in the Wilder RSI of rsi_max."
    )
    rsi_max: Decimal | None = Field(
        default=None,
        gt=50,
        lt=100,
        description="Enter a long only while the 1-minute RSI is at most this (a short: at least "
        "100 - this); no refusal before rsi_period + 1 minutes have closed; null: off.",
    )
    relative_volume_min: Decimal | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="Enter only when the session's volume so far is at least this multiple of "
        "the average daily volume's share of the minutes gone; null: off.",
    )


class ScanSettings(SettingsSection):
    """Filters and ranking of the pre-market gap scan (DESIGN.md section 2, step 1).

    The `collection_*` and `news_*` keys shape how a live scan collects its data (`LiveScan`); they
    are not rules of the domain's `ScanRules`.
    """

    gap_min_pct: Decimal = Field(
        default=Decimal(4),
        ge=0,
        le=1000,
        description="Smallest gap kept, in percent of prev_close.",
    )
    gap_max_pct: Decimal = Field(
        default=Decimal(40),
        gt=0,
        le=1000,
        description="Largest gap kept, in percent of prev_close.",
    )
    price_min: Decimal = Field(
        default=Decimal(2),
        gt=0,
        le=1_000_000,
        description="Lowest pre-market last price kept, in USD.",
    )
    price_max: Decimal = Field(
        default=Decimal(500),
        gt=0,
        le=1_000_000,
        description="Highest pre-market last price kept, in USD.",
    )
    pm_volume_min: int = Field(
        default=50_000,
        ge=0,
        le=10**10,
        description="Least pre-market volume in shares (skipped when the data has no pre-market).",
    )
    adv_min: int = Field(
        default=500_000, ge=0, le=10**11, description="Least average daily volume (adv) in shares."
    )
    min_history_bars: int = Field(
        default=15, ge=1, le=1000, description="Least number of prior daily bars a symbol needs."
    )
    atr_period: int = Field(default=14, ge=1, le=200, description="Daily bars in the Wilder ATR.")
    atr_lookback_bars: int = Field(
        default=43,
        ge=2,
        le=1000,
        description="The ATR is taken over the last this many daily bars up to the previous "
        "session (seeded with the mean true range of the first atr_period, then Wilder-smoothed), "
        "so it does not depend on where the data starts.",
    )
    adv_period: int = Field(
        default=20, ge=1, le=200, description="Sessions in the average daily volume."
    )
    catalyst_required: bool = Field(
        default=False, description="Keep only symbols with a company headline in the news lookback."
    )
    news_lookback_hours: int = Field(
        default=24,
        ge=1,
        le=168,
        description="How far back headlines count as a catalyst, in hours.",
    )
    direction: Direction = Field(
        default=Direction.LONG,
        description="long trades gap-ups, short trades gap-downs, both trades either.",
    )
    rank_by: RankBy = Field(
        default=RankBy.GAP_PCT,
        description="Figure the candidates are ranked by (descending); ties by pre-market volume.",
    )
    top_n: int = Field(default=5, ge=1, le=100, description="How many ranked candidates are kept.")
    split_guard: bool = Field(
        default=True, description="Reject a gap that a stock split explains rather than trading."
    )
    split_guard_heavy_volume_pct: Decimal = Field(
        default=Decimal(25),
        ge=0,
        le=1000,
        description=(
            "A gap at a split ratio is still traded when its pre-market volume is at least this "
            "percent of the average daily volume (news, not an unadjusted split)."
        ),
    )
    universe: list[str] = Field(
        default_factory=list,
        max_length=20_000,
        description="Symbols to scan; an empty list scans every symbol the source has.",
    )
    collection_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Symbols collected at once before a live scan (the rate budgets still rule).",
    )
    collection_margin_secs: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="A live scan's collection is planned to end this long before scan time, "
        "seconds.",
    )
    news_reserve_calls: int = Field(
        default=10,
        ge=0,
        le=10_000,
        description="News calls a live scan's plan keeps for phase 2 when catalyst_required.",
    )
    news_for_candidates: bool = Field(
        default=True,
        description="A live scan fetches the candidates' headlines to show them, even when "
        "catalyst_required is false.",
    )
    filters: ScanFilterSettings = Field(
        default_factory=ScanFilterSettings,
        description="Optional indicator filters (daily SMA trend, daily RSI band); off by default.",
    )
    catalyst_window: str = Field(
        default=PREVIOUS_CLOSE,
        max_length=16,
        description="With catalyst_required, where the headline window starts: previous_close "
        "(the previous session's close) or hours before the scan, such as 12h (1h to 168h).",
    )
    cancel_on_keywords: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="A headline after the scan whose title holds one of these words (for "
        "example offering, halt, downgrade) cancels its symbol's plan if not triggered yet.",
    )

    @property
    def catalyst_window_hours(self) -> int | None:
        """`catalyst_window` in hours, None for previous_close."""
        return _window_hours(self.catalyst_window)

    @field_validator("catalyst_window")
    @classmethod
    def _catalyst_window(cls, value: str) -> str:
        text = value.strip().lower()
        if text != PREVIOUS_CLOSE:
            hours = _window_hours(text)
            if hours is None or not 1 <= hours <= MAX_WINDOW_HOURS:
                what = f"{value!r} is not a catalyst window"
                fix = (
                    "write previous_close, or hours before the scan from 1h to "
                    f"{MAX_WINDOW_HOURS}h (for example 12h)"
                )
                raise_if([problem((), what, fix)])
        return text

    @field_validator("cancel_on_keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        cleaned = [word.strip() for word in value]
        if any(not word or len(word) > 64 for word in cleaned):
            what = "a keyword is empty or longer than 64 characters"
            raise_if([problem((), what, "list words or short phrases: offering, halt, downgrade")])
        return cleaned

    @field_validator("universe")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        problems: list[ConfigProblem] = []
        seen: set[str] = set()
        cleaned: list[str] = []
        for index, text in enumerate(value):
            try:
                ticker = symbol(text)
            except DataError:
                fix = "use 1-15 letters, digits, '.' or '-', starting with a letter (e.g. BRK.B)"
                problems.append(
                    ConfigProblem(loc=(index,), what=f"{text!r} is not a ticker", fix=fix)
                )
                continue
            if ticker in seen:
                what = f"{ticker} is listed twice"
                problems.append(ConfigProblem(loc=(index,), what=what, fix="delete the repeat"))
            seen.add(ticker)
            cleaned.append(ticker)
        raise_if(problems)
        return cleaned

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if self.gap_min_pct >= self.gap_max_pct:
            problems.append(
                problem(
                    ("gap_min_pct",),
                    f"scan.gap_min_pct ({self.gap_min_pct}) must be below "
                    f"scan.gap_max_pct ({self.gap_max_pct})",
                    "lower scan.gap_min_pct or raise scan.gap_max_pct",
                )
            )
        if self.price_min >= self.price_max:
            problems.append(
                problem(
                    ("price_min",),
                    f"scan.price_min ({self.price_min}) must be below "
                    f"scan.price_max ({self.price_max})",
                    "lower scan.price_min or raise scan.price_max",
                )
            )
        if self.min_history_bars < self.atr_period + 1:
            problems.append(
                problem(
                    ("min_history_bars",),
                    f"scan.min_history_bars ({self.min_history_bars}) must be at least "
                    f"scan.atr_period + 1 ({self.atr_period + 1}), the daily bars ATR needs",
                    "raise scan.min_history_bars or lower scan.atr_period",
                )
            )
        if self.atr_lookback_bars < self.atr_period + 1:
            problems.append(
                problem(
                    ("atr_lookback_bars",),
                    f"scan.atr_lookback_bars ({self.atr_lookback_bars}) must be at least "
                    f"scan.atr_period + 1 ({self.atr_period + 1}), the daily bars ATR needs",
                    "raise scan.atr_lookback_bars (default 43) or lower scan.atr_period",
                )
            )
        raise_if(problems)
        return self


def _minutes_after(start: time, minutes: int) -> time:
    return (datetime.combine(date(2000, 1, 3), start) + timedelta(minutes=minutes)).time()


class PlanSettings(SettingsSection):
    """How a candidate becomes a plan: opening range, entry window, stop, target and size."""

    opening_range_minutes: int = Field(
        default=5,
        ge=1,
        le=120,
        description="One-minute bars from 09:30 that form the opening range.",
    )
    entry_offset: Decimal = Field(
        default=Decimal("0.01"),
        ge=0,
        le=10,
        description="Entry stop beyond the opening range, in USD.",
    )
    entry_deadline: ClockTime = Field(
        default=time(10, 30),
        description='Entries trigger only in bars starting before this exchange time ("HH:MM").',
    )
    atr_stop_multiple: Decimal = Field(
        default=Decimal("0.5"),
        gt=0,
        le=10,
        description="Stop distance from entry in multiples of ATR.",
    )
    reward_risk: Decimal = Field(
        default=Decimal("2.0"), gt=0, le=20, description="Target distance in multiples of the risk."
    )
    risk_per_trade_pct: Decimal = Field(
        default=Decimal(1), gt=0, le=100, description="Equity risked per trade, in percent."
    )
    max_position_pct: Decimal = Field(
        default=Decimal(25), gt=0, le=100, description="Largest position, in percent of equity."
    )
    flatten_before_close_minutes: int = Field(
        default=5,
        ge=1,
        le=120,
        description="Minutes before the close when every position is flattened.",
    )
    confirmations: EntryConfirmationSettings = Field(
        default_factory=EntryConfirmationSettings,
        description="Optional entry confirmations (VWAP, 1-minute RSI, relative volume); off by "
        "default.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        range_end = _minutes_after(SESSION_OPEN, self.opening_range_minutes)
        latest = _minutes_after(SESSION_CLOSE, -self.flatten_before_close_minutes)
        deadline = self.entry_deadline
        if deadline <= range_end:
            problems.append(
                problem(
                    ("entry_deadline",),
                    f"plan.entry_deadline ({deadline:%H:%M}) must be after the opening range "
                    f"ends at {range_end:%H:%M} (09:30 + plan.opening_range_minutes "
                    f"{self.opening_range_minutes})",
                    "move plan.entry_deadline later or shorten plan.opening_range_minutes",
                )
            )
        elif deadline > latest:
            problems.append(
                problem(
                    ("entry_deadline",),
                    f"plan.entry_deadline ({deadline:%H:%M}) must not be after {latest:%H:%M} "
                    f"(16:00 - plan.flatten_before_close_minutes "
                    f"{self.flatten_before_close_minutes})",
                    "move plan.entry_deadline earlier or lower plan.flatten_before_close_minutes",
                )
            )
        if self.risk_per_trade_pct > self.max_position_pct:
            problems.append(
                problem(
                    ("risk_per_trade_pct",),
                    f"plan.risk_per_trade_pct ({self.risk_per_trade_pct}) must not exceed "
                    f"plan.max_position_pct ({self.max_position_pct})",
                    "lower plan.risk_per_trade_pct or raise plan.max_position_pct",
                )
            )
        raise_if(problems)
        return self


class ErrorBreakerSettings(SettingsSection):
    """The error breaker: `count` order rejections or store failures within `window_mins`."""

    count: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Errors within the window that halt trading (0 turns the breaker off).",
    )
    window_mins: int = Field(
        default=10, ge=1, le=1440, description="Length of the sliding window, in minutes."
    )


class RiskSettings(SettingsSection):
    """Limits the risk engine applies before any order."""

    max_open_positions: int = Field(
        default=3, ge=1, le=100, description="Most positions open at once."
    )
    max_gross_exposure_pct: Decimal = Field(
        default=Decimal(100), gt=0, le=400, description="Most gross exposure, in percent of equity."
    )
    daily_loss_limit_pct: Decimal = Field(
        default=Decimal(2),
        gt=0,
        le=100,
        description=(
            "Loss (realised, or marked: see loss_limit_basis), in percent of start-of-day "
            "equity, that stops new entries."
        ),
    )
    max_orders_per_minute: int = Field(
        default=10, ge=1, le=1000, description="Most orders sent in any minute."
    )
    loss_limit_basis: LossBasis = Field(
        default=LossBasis.MARKED,
        description=(
            "What the daily loss limit counts: 'realised' P&L only, or 'marked': realised plus "
            "the open positions' losses marked at every minute's close (open gains never offset "
            "a realised loss)."
        ),
    )
    loss_limit_action: LossAction = Field(
        default=LossAction.REDUCE,
        description=(
            "What reaching the daily loss limit does: 'reduce' stops new entries (open positions "
            "keep their stop, target and the day's flatten); 'flatten' also closes everything."
        ),
    )
    max_drawdown_pct: Decimal | None = Field(
        default=None,
        gt=0,
        le=100,
        description=(
            "Halt (until an operator resumes) when equity falls this many percent below its "
            "peak over the stored daily reports; null turns it off."
        ),
    )
    error_breaker: ErrorBreakerSettings = Field(
        default_factory=ErrorBreakerSettings,
        description="Halt on a burst of order rejections or store failures.",
    )
    max_var_pct: Decimal | None = Field(
        default=None,
        gt=0,
        le=100,
        description=(
            "Refuse an entry whose addition takes the open book's one-day historical VaR (at "
            "var_confidence_pct) over this percent of start-of-day equity; null turns it off."
        ),
    )
    var_confidence_pct: Literal[95, 99] = Field(
        default=95, description="The VaR confidence max_var_pct applies to: 95 or 99."
    )


class ExecutionSettings(SettingsSection):
    """Costs of the paper broker; both zero reproduces the rules exactly."""

    slippage_bps: Decimal = Field(
        default=Decimal(0), ge=0, le=1000, description="Slippage against us on every fill, in bps."
    )
    commission_per_share: Decimal = Field(
        default=Decimal(0), ge=0, le=10, description="Commission per share traded, in USD."
    )
