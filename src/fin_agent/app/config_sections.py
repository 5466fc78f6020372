"""The sections of the settings (scan, plan, risk, schedule, ...), each checked for consistency.

Every model forbids unknown keys, bounds every number and describes every field.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from fin_agent.app.config_problems import ConfigProblem, SettingsValueError
from fin_agent.app.config_types import (
    SESSION_CLOSE,
    SESSION_OPEN,
    AbsolutePath,
    ClockTime,
    CronExpression,
    SessionTime,
    TimeZoneName,
    parse_at,
    problem,
    raise_if,
)
from fin_agent.domain.errors import DataError
from fin_agent.domain.rules import Direction, RankBy
from fin_agent.domain.values import symbol


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class AccountSettings(_Section):
    """The trading account."""

    starting_equity: Decimal = Field(
        default=Decimal(100_000),
        gt=0,
        le=Decimal(10**12),
        description="Equity at the start of the first trading day, in USD.",
    )


class ScanSettings(_Section):
    """Filters and ranking of the pre-market gap scan (DESIGN.md section 2, step 1)."""

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
    universe: list[str] = Field(
        default_factory=list,
        max_length=20_000,
        description="Symbols to scan; an empty list scans every symbol the source has.",
    )

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
        raise_if(problems)
        return self


def _minutes_after(start: time, minutes: int) -> time:
    return (datetime.combine(date(2000, 1, 3), start) + timedelta(minutes=minutes)).time()


class PlanSettings(_Section):
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


class RiskSettings(_Section):
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
        description="Realised loss, in percent of start-of-day equity, that stops new entries.",
    )
    max_orders_per_minute: int = Field(
        default=10, ge=1, le=1000, description="Most orders sent in any minute."
    )


class ExecutionSettings(_Section):
    """Costs of the paper broker; both zero reproduces the rules exactly."""

    slippage_bps: Decimal = Field(
        default=Decimal(0), ge=0, le=1000, description="Slippage against us on every fill, in bps."
    )
    commission_per_share: Decimal = Field(
        default=Decimal(0), ge=0, le=10, description="Commission per share traded, in USD."
    )


class JobSchedule(_Section):
    """When a job runs: a cron expression, or a time relative to the session's open or close."""

    cron: CronExpression | None = Field(
        default=None,
        description="Five-field cron expression in schedule.timezone, e.g. '0 9 * * 1-5'.",
    )
    at: SessionTime | None = Field(
        default=None,
        description="Time relative to the session, e.g. 'open + 5m' or 'close - 5m' (follows "
        "early closes); runs on sessions only.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.cron is None) == (self.at is None):
            what = "sets both cron and at" if self.cron else "sets neither cron nor at"
            raise SettingsValueError.single(
                what, "give exactly one of them, e.g. `at: open + 5m` or `cron: '0 9 * * 1-5'`"
            )
        return self

    def session_offset(self) -> tuple[Literal["open", "close"], timedelta] | None:
        """For an `at` job, its anchor and signed offset (`close - 5m` is close, -5 min)."""
        return parse_at(self.at) if self.at is not None else None

    def describe(self) -> str:
        """The schedule as written, e.g. `at: close - 5m`."""
        return f"at: {self.at}" if self.at is not None else f"cron: {self.cron}"


class JobsSettings(_Section):
    """The agent's scheduled jobs."""

    scan: JobSchedule = Field(
        default=JobSchedule(cron="0 9 * * 1-5"), description="Pre-market gap scan (sessions only)."
    )
    plan: JobSchedule = Field(
        default=JobSchedule(at="open + 5m"),
        description="Plans built when the opening range closes.",
    )
    flatten: JobSchedule = Field(
        default=JobSchedule(at="close - 5m"), description="Every open position flattened."
    )
    report: JobSchedule = Field(
        default=JobSchedule(at="close + 15m"), description="Daily report after the close."
    )
    housekeeping: JobSchedule = Field(
        default=JobSchedule(cron="30 17 * * 1-5"),
        description="Stream trimming and store maintenance.",
    )

    def get(self, name: str) -> JobSchedule | None:
        """The job called `name`, or None when there is no such job."""
        value = getattr(self, name, None) if name in type(self).model_fields else None
        return value if isinstance(value, JobSchedule) else None

    def items(self) -> list[tuple[str, JobSchedule]]:
        """Every job as `(name, schedule)`, in declaration order."""
        return [(name, job) for name in type(self).model_fields if (job := self.get(name))]


class ScheduleSettings(_Section):
    """When jobs run."""

    timezone: TimeZoneName = Field(
        default="America/New_York", description="Time zone of the cron expressions (IANA name)."
    )
    jobs: JobsSettings = Field(default_factory=JobsSettings, description="The scheduled jobs.")


class MarketSettings(_Section):
    """Where market data comes from."""

    source: Literal["simulator", "replay", "finnhub"] = Field(
        default="simulator",
        description="simulator (seeded, offline), replay (bar files) or finnhub.",
    )


class SimulatorSettings(_Section):
    """The seeded market simulator (no network)."""

    seed: int = Field(
        default=7, ge=0, le=2**32 - 1, description="Random seed: same seed, same market."
    )
    universe_size: int = Field(
        default=40, ge=1, le=5000, description="Number of simulated symbols."
    )
    start_date: date = Field(
        default=date(2025, 3, 3),
        ge=date(1990, 1, 1),
        le=date(2100, 1, 1),
        description="First simulated day (YYYY-MM-DD).",
    )


class ReplaySettings(_Section):
    """Replaying recorded bar files."""

    files: list[AbsolutePath] = Field(
        default_factory=list,
        max_length=100_000,
        description="Bar files to replay; relative paths are from config.yaml's folder.",
    )
    timezone: TimeZoneName = Field(
        default="America/New_York", description="Time zone of naive timestamps in the files."
    )
    bar_stamp: Literal["start", "end", "auto"] = Field(
        default="auto",
        description="Whether a bar's stamp is its start, its end, or detected (auto).",
    )
    factors_dir: AbsolutePath | None = Field(
        default=None, description="Folder of split/dividend factor files; null for none."
    )


class BusSettings(_Section):
    """The event bus."""

    kind: Literal["memory", "redis"] = Field(
        default="memory", description="memory (in process) or redis (Redis Streams)."
    )


class StoreSettings(_Section):
    """Where events and results are stored."""

    kind: Literal["memory", "duckdb", "timescale"] = Field(
        default="memory", description="memory, duckdb (embedded) or timescale (PostgreSQL)."
    )


class HttpSettings(_Section):
    """The health and metrics HTTP server."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(
        default=8080, ge=0, le=65535, description="Port to listen on; 0 picks a free one."
    )


class DashboardSettings(_Section):
    """The Streamlit dashboard."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(
        default=8501, ge=0, le=65535, description="Port to listen on; 0 picks a free one."
    )


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class LoggingSettings(_Section):
    """Log level and format."""

    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
    ] = Field(default="INFO", description="Least severe level logged.")
    format: Literal["console", "json"] = Field(
        default="console", description="console (for people) or json (for log collectors)."
    )
