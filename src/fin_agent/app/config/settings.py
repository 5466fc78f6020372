"""Validated settings of fin_agent: config.yaml < profile overlay < environment < secret files.

`load_settings` is the entry point: any problem becomes one `ConfigError` listing each bad field
on its own line with its fix. `Settings.strategy()` maps the values onto the domain's rules.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from fin_agent.app.config.access import is_loopback
from fin_agent.app.config.broker import BrokerSettings
from fin_agent.app.config.fields import AbsolutePath, TimeZoneName
from fin_agent.app.config.file import read_config_file, read_overlay
from fin_agent.app.config.market import (
    FeedSettings,
    FinnhubSettings,
    MarketSettings,
    YahooSettings,
)
from fin_agent.app.config.news import NewsSettings
from fin_agent.app.config.optimize import OptimizeSettings, space_problems
from fin_agent.app.config.problems import ConfigProblem, problem, raise_if, translate
from fin_agent.app.config.runtime import (
    BusSettings,
    DashboardSettings,
    HttpSettings,
    LoggingSettings,
    NotificationsSettings,
    ReplaySettings,
    ReportSettings,
    SimulatorSettings,
    StoreSettings,
    TracingSettings,
)
from fin_agent.app.config.schedule import JobSchedule, JobsSettings, ScheduleSettings
from fin_agent.app.config.sections import (
    AccountSettings,
    ExecutionSettings,
    PlanSettings,
    RiskSettings,
    ScanSettings,
)
from fin_agent.app.config.sources import (
    CONFIG_ENV_VAR,
    DEFAULT_SECRETS_DIR,
    PROFILE_ENV_VAR,
    SettingsLayer,
    arguments_layer,
    environ_layer,
    secret_fields,
    secrets_layer,
)
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.rules import (
    EntryConfirmations,
    ExecutionCosts,
    PlanRules,
    RiskLimits,
    ScanFilters,
    ScanRules,
    Strategy,
)

__all__ = [
    "AccountSettings",
    "BusSettings",
    "DashboardSettings",
    "ExecutionSettings",
    "FeedSettings",
    "FinnhubSettings",
    "HttpSettings",
    "JobSchedule",
    "JobsSettings",
    "LoggingSettings",
    "MarketSettings",
    "PlanSettings",
    "ReplaySettings",
    "RiskSettings",
    "ScanSettings",
    "ScheduleSettings",
    "Settings",
    "SimulatorSettings",
    "StoreSettings",
    "YahooSettings",
    "load_settings",
]


class Settings(BaseSettings):
    """Every setting of fin_agent, validated; build it with `load_settings`."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, validate_default=True)

    profile: Literal["dev", "paper", "prod"] = Field(
        default="dev", description="Which overlay of config.yaml's `profiles:` applies."
    )
    data_dir: AbsolutePath = Field(
        default=Path("var"),
        description="Folder everything the agent writes goes under; relative paths in config.yaml "
        "are from its folder.",
    )
    timezone: TimeZoneName = Field(
        default="America/New_York", description="Exchange time zone (IANA name)."
    )
    secrets_dir: AbsolutePath = Field(
        default=DEFAULT_SECRETS_DIR,
        description="Folder of secret files, one per secret, named after it.",
    )
    account: AccountSettings = Field(default_factory=AccountSettings, description="The account.")
    scan: ScanSettings = Field(default_factory=ScanSettings, description="The gap scan.")
    plan: PlanSettings = Field(default_factory=PlanSettings, description="Trade plans.")
    risk: RiskSettings = Field(default_factory=RiskSettings, description="Risk limits.")
    execution: ExecutionSettings = Field(
        default_factory=ExecutionSettings, description="Paper broker costs."
    )
    schedule: ScheduleSettings = Field(
        default_factory=ScheduleSettings, description="Job schedule."
    )
    market: MarketSettings = Field(
        default_factory=MarketSettings,
        description="Market data: the source, and the live market's daily bar sources.",
    )
    finnhub: FinnhubSettings = Field(
        default_factory=FinnhubSettings,
        description="Finnhub's REST API (quotes, news): URL, rate limit and HTTP policy.",
    )
    feed: FeedSettings = Field(
        default_factory=FeedSettings,
        description="Finnhub's trade WebSocket and the 1-minute bars built from it.",
    )
    yahoo: YahooSettings = Field(
        default_factory=YahooSettings,
        description="Yahoo's daily bars: URL, user agent, rate limit and HTTP policy.",
    )
    simulator: SimulatorSettings = Field(
        default_factory=SimulatorSettings, description="The market simulator."
    )
    replay: ReplaySettings = Field(default_factory=ReplaySettings, description="Bar file replay.")
    bus: BusSettings = Field(default_factory=BusSettings, description="The event bus.")
    store: StoreSettings = Field(default_factory=StoreSettings, description="The store.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="Health/metrics server.")
    dashboard: DashboardSettings = Field(
        default_factory=DashboardSettings, description="The dashboard."
    )
    logging: LoggingSettings = Field(default_factory=LoggingSettings, description="Logging.")
    tracing: TracingSettings = Field(
        default_factory=TracingSettings, description="OpenTelemetry tracing."
    )
    notifications: NotificationsSettings = Field(
        default_factory=NotificationsSettings, description="Discord and webhook notifications."
    )
    report: ReportSettings = Field(
        default_factory=ReportSettings, description="The backtest report (backtest --report)."
    )
    news: NewsSettings = Field(
        default_factory=NewsSettings, description="The live run's news stream."
    )
    broker: BrokerSettings = Field(
        default_factory=BrokerSettings, description="The broker: paper, or Alpaca."
    )
    optimize: OptimizeSettings = Field(
        default_factory=OptimizeSettings,
        description="`fin-agent optimize`: the study, objective, walk-forward and search space.",
    )
    alpaca_key_id: SecretStr | None = Field(
        default=None, description="Alpaca API key id (environment or secret file only)."
    )
    alpaca_secret_key: SecretStr | None = Field(
        default=None, description="Alpaca API secret key (environment or secret file only)."
    )
    finnhub_api_key: SecretStr | None = Field(
        default=None, description="Finnhub API key (environment or secret file only)."
    )
    database_password: SecretStr | None = Field(
        default=None, description="TimescaleDB password (environment or secret file only)."
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Password (AUTH) of the Redis at bus.redis_url, for the bus, the slots and "
        "`fin-agent dlq` (environment or secret file only).",
    )
    dashboard_password: SecretStr | None = Field(
        default=None, description="Dashboard login password (environment or secret file only)."
    )
    discord_webhook_url: SecretStr | None = Field(
        default=None,
        description="Discord webhook for notifications (environment or secret file only).",
    )
    webhook_url: SecretStr | None = Field(
        default=None,
        description="Generic JSON webhook for notifications (environment or secret file only).",
    )
    api_token: SecretStr | None = Field(
        default=None,
        min_length=12,
        description="Bearer token of the HTTP API (/api/*, /metrics), required when http.host is "
        "not a loopback address (environment or secret file only).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`Settings(...)` takes only its arguments; `load_settings` adds file, env, secrets."""
        return (init_settings,)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = [
            *self._risk_problems(),
            *self._job_problems(),
            *space_problems(type(self), self.optimize),
        ]
        if self.market.source == "finnhub" and self.finnhub_api_key is None:
            problems.append(
                problem(
                    ("finnhub_api_key",),
                    "market.source is finnhub but finnhub_api_key is not set",
                    "set FIN_AGENT_FINNHUB_API_KEY or write the key to a file named "
                    f"finnhub_api_key in secrets_dir ({self.secrets_dir})",
                )
            )
        uses_alpaca = {
            "broker.kind is alpaca": self.broker.kind == "alpaca",
            "market.universe_source is alpaca": self.market.source == "finnhub"
            and self.market.universe_source == "alpaca",
        }
        for why in [w for w, used in uses_alpaca.items() if used][:1]:
            for name in ("alpaca_key_id", "alpaca_secret_key"):
                if getattr(self, name) is None:
                    problems.append(
                        problem(
                            (name,),
                            f"{why} but {name} is not set",
                            f"set FIN_AGENT_{name.upper()} or write it to a file named {name} "
                            f"in secrets_dir ({self.secrets_dir})",
                        )
                    )
        if self.http.port == self.dashboard.port != 0:
            problems.append(
                problem(
                    ("dashboard", "port"),
                    f"dashboard.port ({self.dashboard.port}) must differ from "
                    f"http.port ({self.http.port})",
                    "change one of them",
                )
            )
        if not is_loopback(self.http.host) and self.api_token is None:
            problems.append(
                problem(
                    ("api_token",),
                    f"http.host {self.http.host} is not a loopback address but api_token is not "
                    "set, so the API and /metrics would be open to the network",
                    "set FIN_AGENT_API_TOKEN or write a token (12+ characters) to a file named "
                    f"api_token in secrets_dir ({self.secrets_dir}), or set http.host to "
                    "127.0.0.1",
                )
            )
        raise_if(problems)
        return self

    def _risk_problems(self) -> list[ConfigProblem]:
        problems = []
        if self.plan.risk_per_trade_pct > self.risk.daily_loss_limit_pct:
            problems.append(
                problem(
                    ("plan", "risk_per_trade_pct"),
                    f"plan.risk_per_trade_pct ({self.plan.risk_per_trade_pct}) must not exceed "
                    f"risk.daily_loss_limit_pct ({self.risk.daily_loss_limit_pct})",
                    "lower plan.risk_per_trade_pct or raise risk.daily_loss_limit_pct",
                )
            )
        if self.plan.max_position_pct > self.risk.max_gross_exposure_pct:
            problems.append(
                problem(
                    ("plan", "max_position_pct"),
                    f"plan.max_position_pct ({self.plan.max_position_pct}) must not exceed "
                    f"risk.max_gross_exposure_pct ({self.risk.max_gross_exposure_pct})",
                    "lower plan.max_position_pct or raise risk.max_gross_exposure_pct",
                )
            )
        return problems

    def _job_problems(self) -> list[ConfigProblem]:
        problems = []
        plan_job, flatten_job = self.schedule.jobs.plan, self.schedule.jobs.flatten
        range_minutes = self.plan.opening_range_minutes
        offset = plan_job.session_offset()
        if offset is None or offset[0] != "open" or offset[1] < timedelta(minutes=range_minutes):
            problems.append(
                problem(
                    ("schedule", "jobs", "plan"),
                    f"schedule.jobs.plan ({plan_job.describe()}) must run at or after open + "
                    f"plan.opening_range_minutes ({range_minutes}m), when the range is complete",
                    f"make it `plan: {{at: open + {range_minutes}m}}`",
                )
            )
        flatten_minutes = self.plan.flatten_before_close_minutes
        wanted = ("close", -timedelta(minutes=flatten_minutes))
        if flatten_job.session_offset() != wanted:
            problems.append(
                problem(
                    ("schedule", "jobs", "flatten"),
                    f"schedule.jobs.flatten ({flatten_job.describe()}) must be close - "
                    f"plan.flatten_before_close_minutes ({flatten_minutes}m)",
                    f"make it `flatten: {{at: close - {flatten_minutes}m}}` or change "
                    "plan.flatten_before_close_minutes",
                )
            )
        return problems

    def strategy(self) -> Strategy:
        """The validated strategy parameters as the domain's frozen rules."""
        scan, plan, risk, costs = self.scan, self.plan, self.risk, self.execution
        return Strategy(
            scan=ScanRules(
                gap_min_pct=scan.gap_min_pct,
                gap_max_pct=scan.gap_max_pct,
                price_min=scan.price_min,
                price_max=scan.price_max,
                pm_volume_min=scan.pm_volume_min,
                adv_min=scan.adv_min,
                min_history_bars=scan.min_history_bars,
                atr_period=scan.atr_period,
                atr_lookback_bars=scan.atr_lookback_bars,
                adv_period=scan.adv_period,
                catalyst_required=scan.catalyst_required,
                direction=scan.direction,
                rank_by=scan.rank_by,
                top_n=scan.top_n,
                split_guard=scan.split_guard,
                split_guard_heavy_volume_pct=scan.split_guard_heavy_volume_pct,
                filters=ScanFilters(
                    sma_days=scan.filters.sma_days,
                    rsi_period=scan.filters.rsi_period,
                    rsi_max=scan.filters.rsi_max,
                    rsi_min=scan.filters.rsi_min,
                ),
                catalyst_window_hours=scan.catalyst_window_hours,
                cancel_on_keywords=tuple(scan.cancel_on_keywords),
            ),
            plan=PlanRules(
                opening_range_minutes=plan.opening_range_minutes,
                entry_offset=plan.entry_offset,
                entry_deadline=plan.entry_deadline,
                atr_stop_multiple=plan.atr_stop_multiple,
                reward_risk=plan.reward_risk,
                risk_per_trade_pct=plan.risk_per_trade_pct,
                max_position_pct=plan.max_position_pct,
                flatten_before_close_minutes=plan.flatten_before_close_minutes,
                confirmations=EntryConfirmations(
                    above_vwap=plan.confirmations.above_vwap,
                    rsi_period=plan.confirmations.rsi_period,
                    rsi_max=plan.confirmations.rsi_max,
                    relative_volume_min=plan.confirmations.relative_volume_min,
                ),
            ),
            risk=RiskLimits(
                max_open_positions=risk.max_open_positions,
                max_gross_exposure_pct=risk.max_gross_exposure_pct,
                daily_loss_limit_pct=risk.daily_loss_limit_pct,
                max_orders_per_minute=risk.max_orders_per_minute,
                loss_limit_basis=risk.loss_limit_basis,
                loss_limit_action=risk.loss_limit_action,
                max_drawdown_pct=risk.max_drawdown_pct,
                error_breaker_count=risk.error_breaker.count,
                error_breaker_window_mins=risk.error_breaker.window_mins,
                max_var_pct=risk.max_var_pct,
                var_confidence_pct=risk.var_confidence_pct,
            ),
            costs=ExecutionCosts(
                slippage_bps=costs.slippage_bps, commission_per_share=costs.commission_per_share
            ),
        )

    def secret_values(self) -> list[str]:
        """The values of every secret that is set (the logs mask them wherever they appear)."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return values

    def bus_redis_password(self) -> str | None:
        """The `redis_password` secret, for the Redis at bus.redis_url (the embedded server has
        none); a password written in the URL itself wins, as redis-py reads it."""
        if self.bus.redis_url is None or self.redis_password is None:
            return None
        return self.redis_password.get_secret_value()

    def strategy_equity(self) -> Decimal:
        """Equity at the start of the first simulated or replayed day (account.starting_equity)."""
        return self.account.starting_equity

    def data_path(self, *parts: str | os.PathLike[str]) -> Path:
        """A path under data_dir; raises ValueError for parts that would leave it."""
        path = Path(os.path.normpath(self.data_dir.joinpath(*parts)))
        if not path.is_relative_to(self.data_dir):
            raise ValueError(f"{path} is outside data_dir {self.data_dir}; pass relative parts")
        return path


def _secrets_dir_of(layers: list[SettingsLayer]) -> Path:
    for layer in layers:
        value = layer.data.get("secrets_dir")
        if isinstance(value, str | Path) and str(value):
            return Path(value).expanduser()
    return DEFAULT_SECRETS_DIR


def load_settings(
    config_path: Path | None = None,
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    secrets_dir: Path | None = None,
    overlays: Sequence[Path] = (),
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load config.yaml (default: $FIN_AGENT_CONFIG, else ./config.yaml) with its layers.

    Precedence, lowest first: the file, its profile overlay, `FIN_AGENT_*` variables, secret
    files, the `overlays` files in order (`--config` after a command), `overrides` (nested
    values, as an optimiser's trial sets them), then these arguments. Raises `ConfigError`
    listing every problem, one per line.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    path = config_path or Path(env.get(CONFIG_ENV_VAR) or "config.yaml")
    config = read_config_file(path, Settings)
    if not config.readable:
        raise ConfigError("\n".join(str(p) for p in config.problems))
    chosen = profile or env.get(PROFILE_ENV_VAR) or config.data.get("profile") or "dev"
    arguments = arguments_layer(Settings, profile=profile, secrets_dir=secrets_dir)
    environment = environ_layer(Settings, env)
    overlay = config.profile_layer(Settings, chosen)
    base = config.base_layer(Settings)
    secrets = secrets_layer(Settings, _secrets_dir_of([arguments, environment, overlay, base]))
    files = [read_overlay(path, Settings) for path in overlays]
    unreadable = [str(p) for file in files if not file.readable for p in file.problems]
    if unreadable:
        raise ConfigError("\n".join(unreadable))
    above = [file.overlay_layer(Settings) for file in reversed(files)]
    if overrides:
        above.insert(0, SettingsLayer(Settings, data=copy.deepcopy(dict(overrides))))
    layers = [arguments, *above, secrets, environment, overlay, base]
    problems = [
        *config.problems,
        *environment.problems,
        *secrets.problems,
        *(p for file in files for p in file.problems),
    ]
    settings: Settings | None = None
    try:
        # pydantic-settings' documented hook for pre-built sources (mypy cannot see it).
        build: dict[str, Any] = {"_build_sources": (tuple(layers), {})}
        settings = Settings(**build)
    except ValidationError as exc:
        for problem in translate(exc, Settings, secret_fields=secret_fields(Settings)):
            origin = problem.origin or next(
                (o for layer in layers if (o := layer.origin(problem.loc))), None
            )
            problems.append(replace(problem, origin=origin))
    if problems or settings is None:
        lines = dict.fromkeys(str(p) for p in problems)
        raise ConfigError("\n".join(lines))
    return settings
