"""The runtime sections of the settings: simulator, replay, bus, store, servers, logging (the
schedule's are in `schedule`).

Like the strategy sections, every model forbids unknown keys, bounds every number and describes
every field.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from fin_agent.app.config.fields import (
    AbsolutePath,
    TimeZoneName,
)
from fin_agent.app.config.problems import SettingsValueError
from fin_agent.app.config.sections import SettingsSection


class SimulatorSettings(SettingsSection):
    """The seeded market simulator (no network)."""

    seed: int = Field(
        default=7, ge=0, le=2**32 - 1, description="Random seed: same seed, same market."
    )
    universe_size: int = Field(
        default=40, ge=1, le=10_000, description="Number of simulated symbols."
    )
    start_date: date = Field(
        default=date(2025, 3, 3),
        ge=date(1990, 1, 1),
        le=date(2100, 1, 1),
        description="First simulated day (YYYY-MM-DD).",
    )
    news_stream: bool = Field(
        default=True,
        description="Publish each simulated day's headlines on the bus at their times "
        "(news.published), before and during the session.",
    )


class ReplaySettings(SettingsSection):
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


class BusSettings(SettingsSection):
    """The event bus."""

    kind: Literal["memory", "redis"] = Field(
        default="memory", description="memory (in process) or redis (Redis Streams)."
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "redis:// or unix:// URL of Redis; unset runs an embedded redis-server under "
            "data_dir/redis with AOF on."
        ),
        pattern=r"^(redis|rediss|unix)://",
    )
    stream_prefix: str = Field(
        default="fin", pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="Prefix of every stream key."
    )
    block_ms: int = Field(
        default=1000, ge=10, le=60_000, description="How long a consumer's XREADGROUP blocks, ms."
    )
    read_count: int = Field(
        default=200, ge=1, le=10_000, description="Most entries one XREADGROUP returns."
    )
    claim_idle_ms: int = Field(
        default=30_000,
        ge=100,
        le=86_400_000,
        description="Entries idle this long in another consumer are reclaimed (XAUTOCLAIM), ms.",
    )
    max_deliveries: int = Field(
        default=5, ge=1, le=1000, description="Deliveries before an entry goes to the dead letters."
    )
    max_in_flight: int = Field(
        default=10_000, ge=1, le=10_000_000, description="Events a producer may have in flight."
    )
    max_lag: int = Field(
        default=100_000,
        ge=1,
        le=100_000_000,
        description="Group lag (entries) above which producers wait: back-pressure.",
    )
    retain_hours: float = Field(
        default=72, ge=0, le=24 * 365, description="Handled entries kept this long before trimming."
    )
    consumer: str = Field(
        default="fin-agent",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description=(
            "This agent's consumer name in every group: fixed, so a restarted agent re-reads at "
            "once what its killed predecessor left unacknowledged."
        ),
    )
    takeover_secs: float = Field(
        default=15.0,
        ge=1.0,
        le=3600.0,
        description=(
            "redis: the active agent's lease lasts this long unrenewed; a second agent on the "
            "same streams stands by and takes over within this many seconds of it dying."
        ),
    )


class StoreSettings(SettingsSection):
    """Where events and results are stored."""

    kind: Literal["memory", "duckdb", "timescale"] = Field(
        default="duckdb", description="memory, duckdb (embedded) or timescale (PostgreSQL)."
    )
    duckdb_file: str = Field(
        default="fin_agent.duckdb",
        min_length=1,
        description="The DuckDB database file, relative to data_dir.",
    )
    duckdb_memory_limit: str = Field(
        default="512MB",
        pattern=r"^[1-9][0-9]*(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description=(
            "DuckDB's memory_limit: the most memory its buffer cache holds (it spills to disk "
            "beyond); DuckDB's own default is 80 % of the machine's RAM. A number and a unit, "
            "e.g. 512MB or 2GiB."
        ),
    )
    url: str = Field(
        default="postgresql://fin_agent@127.0.0.1:5432/fin_agent",
        pattern=r"^postgres(ql)?://",
        description=(
            "PostgreSQL/TimescaleDB URL without the password (database_password is a secret)."
        ),
    )
    schema_name: str = Field(
        default="public",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of the tables.",
    )
    batch_size: int = Field(
        default=500, ge=1, le=100_000, description="Most events the coordinator writes at once."
    )
    compress_after_days: int | None = Field(
        default=7,
        ge=1,
        le=3650,
        description=(
            "timescale: compress the chunks whose rows are older than this many days (they stay "
            "readable and writable); null leaves every chunk uncompressed."
        ),
    )
    outage_tolerance_secs: float = Field(
        default=900.0,
        ge=0.0,
        le=86_400.0,
        description=(
            "While the store refuses writes longer than this, the agent opens no new positions "
            "(open ones are still managed); every event waits on the bus until the store is back."
        ),
    )
    bars_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description=(
            "timescale: drop minute bars written live more than this many days ago; bars written "
            "back-dated (backtests, replays, simulations) are kept. null (the default) keeps "
            "every bar."
        ),
    )


class HttpSettings(SettingsSection):
    """The health and metrics HTTP server."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(
        default=8080, ge=0, le=65535, description="Port to listen on; 0 picks a free one."
    )


class DashboardSettings(SettingsSection):
    """The Streamlit dashboard."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(
        default=8501, ge=0, le=65535, description="Port to listen on; 0 picks a free one."
    )
    session_ttl_mins: int = Field(
        default=480,
        ge=1,
        le=10_080,
        description="Minutes a dashboard sign-in lasts before the password is asked again.",
    )
    login_attempts_per_min: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Wrong passwords a client may try per minute before sign-in waits.",
    )


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class LoggingSettings(SettingsSection):
    """Log level and format."""

    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
    ] = Field(default="INFO", description="Least severe level logged.")
    format: Literal["console", "json"] = Field(
        default="console", description="console (for people) or json (for log collectors)."
    )


class TracingSettings(SettingsSection):
    """OpenTelemetry tracing: spans for scan, planning, risk, orders and persistence."""

    exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="none (no export), console (JSON spans on stderr) or otlp (OTLP over HTTP).",
    )
    otlp_endpoint: str = Field(
        default="http://127.0.0.1:4318/v1/traces",
        pattern=r"^https?://",
        description="Where the otlp exporter sends spans.",
    )
    service_name: str = Field(
        default="fin-agent", min_length=1, description="service.name of every span."
    )


NotificationKindName = Literal[
    "plan.executed",
    "position.closed",
    "error.raised",
    "report.daily",
    "operator.command",
    "news.attached",
]
ALL_NOTIFICATION_KINDS: tuple[NotificationKindName, ...] = (
    "plan.executed",
    "position.closed",
    "error.raised",
    "report.daily",
    "operator.command",
    "news.attached",
)


class NotificationsSettings(SettingsSection):
    """Discord and JSON-webhook notifications; their URLs are secrets, set outside config.yaml.

    A notifier runs when its secret is set: discord_webhook_url, webhook_url.
    """

    kinds: list[NotificationKindName] = Field(
        default_factory=lambda: list(ALL_NOTIFICATION_KINDS),
        max_length=6,
        description="Events people are told about: plan.executed, position.closed, error.raised, "
        "report.daily, operator.command (a command's outcome), news.attached (news on an open "
        "position, or cancelling a plan); [] for none.",
    )
    error_min_severity: Literal["warning", "error", "critical"] = Field(
        default="warning", description="Least severe error.raised that is notified."
    )
    timeout_secs: float = Field(
        default=10.0, ge=0.5, le=120, description="Time limit of one webhook request, seconds."
    )
    queue_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Messages a notifier holds before it drops (and counts) new ones.",
    )
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per message (429, 5xx, timeouts are retried)."
    )
    backoff_base_secs: float = Field(
        default=0.5, ge=0.01, le=60, description="First retry's backoff, seconds (then doubled)."
    )
    backoff_max_secs: float = Field(
        default=30.0, ge=0.01, le=600, description="Longest backoff between retries, seconds."
    )
    max_retry_after_secs: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Longest 429 retry_after waited out, seconds; a longer one gives up.",
    )
    drain_timeout_secs: float = Field(
        default=5.0, ge=0, le=120, description="At shutdown, time given to send what is queued."
    )
    notify_timeout_secs: float = Field(
        default=1.0,
        ge=0.01,
        le=10,
        description="Time the router gives one notifier to take a message, seconds.",
    )
    discord_max_per_window: int = Field(
        default=5, ge=1, le=1000, description="Discord messages per discord_window_secs."
    )
    discord_window_secs: float = Field(
        default=2.0, gt=0, le=3600, description="Window of the Discord rate limit, seconds."
    )
    discord_username: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        description="Name the Discord messages show; null: the webhook's own.",
    )
    webhook_max_per_window: int = Field(
        default=10, ge=1, le=1000, description="JSON webhook messages per webhook_window_secs."
    )
    webhook_window_secs: float = Field(
        default=1.0, gt=0, le=3600, description="Window of the JSON webhook rate limit, seconds."
    )

    @model_validator(mode="after")
    def _backoff_in_order(self) -> Self:
        if self.backoff_base_secs > self.backoff_max_secs:
            raise SettingsValueError.single(
                f"backoff_base_secs ({self.backoff_base_secs}) exceeds backoff_max_secs "
                f"({self.backoff_max_secs})",
                "lower notifications.backoff_base_secs or raise notifications.backoff_max_secs",
            )
        return self


class ReportSettings(SettingsSection):
    """The backtest report (`fin-agent backtest --report DIR`)."""

    benchmark_symbol: str | None = Field(
        default="SPY",
        min_length=1,
        max_length=12,
        pattern=r"^[A-Z][A-Z0-9.\-]*$",
        description="Symbol whose buy-and-hold the report compares with, when the data has it; "
        "null: no benchmark.",
    )
