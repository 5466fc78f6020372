"""The market sections of the settings: the source, Finnhub's REST API and trade feed, Yahoo.

Plain settings only (no adapter is imported, so loading the config stays light; the validated
field types are in `config.market_fields`); `live.settings` maps them onto the adapters' configs.
Defaults equal the adapters' own (a test checks), except `market.feed_volume`, off because the
free feed's volume is IEX's only. Every section here is restart-only: the adapters are built
once, at start.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from fin_agent.app.config.fields import SESSION_OPEN, ClockTime
from fin_agent.app.config.market_fields import (
    FINNHUB_FEED_URL,
    FINNHUB_REST_URL,
    YAHOO_URL,
    YAHOO_USER_AGENT,
    ConditionCode,
    FinnhubFeedUrl,
    FinnhubRestUrl,
    HeaderValue,
    WebUrl,
    within,
)
from fin_agent.app.config.problems import (
    ConfigProblem,
    SettingsValueError,
    problem,
    raise_if,
)
from fin_agent.app.config.sections import SettingsSection

DailySourceName = Literal["yahoo"]
FinnhubTransportName = Literal["aiohttp", "finnhub-python"]


def _default_daily_sources() -> list[DailySourceName]:
    return ["yahoo"]


class UniverseFilterSettings(SettingsSection):
    """Which listed symbols are worth a snapshot: keep these looser than the scan's rules."""

    price_min: Decimal = Field(
        default=Decimal(1), ge=0, le=100_000, description="Least previous close kept, USD."
    )
    price_max: Decimal = Field(
        default=Decimal(1000), gt=0, le=1_000_000, description="Most previous close kept, USD."
    )
    adv_min: int = Field(
        default=300_000,
        ge=0,
        le=1_000_000_000,
        description="Least average daily volume (over scan.adv_period sessions) kept, shares.",
    )

    @model_validator(mode="after")
    def _band(self) -> Self:
        if self.price_min >= self.price_max:
            raise SettingsValueError.single(
                f"price_min ({self.price_min}) is not below price_max ({self.price_max})",
                "lower market.universe_filter.price_min or raise price_max",
            )
        return self


class MarketSettings(SettingsSection):
    """Where market data comes from; the rest of the keys shape the live (finnhub) market."""

    source: Literal["simulator", "replay", "finnhub"] = Field(
        default="simulator",
        description="simulator (seeded, offline), replay (bar files) or finnhub.",
    )
    daily_sources: list[DailySourceName] = Field(
        default_factory=_default_daily_sources,
        max_length=10,
        description="Daily bar sources, tried in this order (live market only): yahoo.",
    )
    feed_volume: bool = Field(
        default=False,
        description="Count the feed's pre-market volume in the scan; the free feed carries IEX "
        "trades only, a small share of the market's, so false leaves the volume rule skipped.",
    )
    daily_refetch_sessions: int = Field(
        default=5,
        ge=0,
        le=60,
        description="A session missing among this many latest daily bars (a null row, a bar "
        "published late) is asked for again the next day instead of cached as covered; 0 = never.",
    )
    premarket_opens: ClockTime = Field(
        default=time(4, 0),
        description='Start of the pre-market the feed\'s bars are taken from ("HH:MM").',
    )
    universe_source: Literal["list", "alpaca"] = Field(
        default="list",
        description="list: scan.universe; alpaca: the whole market (Alpaca's active, tradable "
        "US equities, pre-filtered by universe_filter), its pre-market from Alpaca's snapshots "
        "and its daily bars from Alpaca (needs alpaca_key_id and alpaca_secret_key).",
    )
    universe_filter: UniverseFilterSettings = Field(
        default_factory=UniverseFilterSettings,
        description="The pre-filter of a whole-market universe, on cached daily bars.",
    )

    @field_validator("daily_sources")
    @classmethod
    def _sources(cls, value: list[DailySourceName]) -> list[DailySourceName]:
        if not value:
            raise SettingsValueError.single(
                "lists no daily bar source", "list at least one, e.g. [yahoo]"
            )
        repeats = [
            problem((index,), f"{name} is listed twice", "delete the repeat")
            for index, name in enumerate(value)
            if name in value[:index]
        ]
        raise_if(repeats)
        return value

    @field_validator("premarket_opens")
    @classmethod
    def _before_the_open(cls, value: time) -> time:
        if value >= SESSION_OPEN:
            raise SettingsValueError.single(
                f"{value:%H:%M} is not before the session opens ({SESSION_OPEN:%H:%M})",
                'use a time before 09:30, e.g. "04:00"',
            )
        return value


class RateWindowSettings(SettingsSection):
    """One window of a vendor's rate limit: at most `max_calls` in any `per_secs` seconds."""

    max_calls: Annotated[int, within(1, 1_000_000)] = Field(
        description="Calls allowed in the window."
    )
    per_secs: Annotated[float, within(0, 86_400, above=True)] = Field(
        description="Length of the window, seconds."
    )


def _windows(*pairs: tuple[int, float]) -> list[RateWindowSettings]:
    return [RateWindowSettings(max_calls=calls, per_secs=secs) for calls, secs in pairs]


def _check_windows(value: list[RateWindowSettings]) -> list[RateWindowSettings]:
    if not value:
        raise SettingsValueError.single(
            "has no window", "list at least one, e.g. [{max_calls: 60, per_secs: 60}]"
        )
    return value


RateWindows = Annotated[list[RateWindowSettings], AfterValidator(_check_windows)]


class BreakerSettings(SettingsSection):
    """When an endpoint's circuit breaker opens, and for how long."""

    failure_threshold: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failures in a row (5xx, timeouts) that open the endpoint's breaker.",
    )
    cooldown_secs: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long an open breaker refuses calls before it lets one trial through.",
    )


class HttpPolicySettings(SettingsSection):
    """Timeouts, retries, 429 handling and breakers of one vendor's HTTP client."""

    timeout_secs: float = Field(
        default=10.0, gt=0, le=300, description="Time limit of one request, seconds."
    )
    max_attempts: int = Field(
        default=4, ge=1, le=20, description="Tries per call (5xx, timeouts, dropped connections)."
    )
    backoff_base_secs: float = Field(
        default=0.5, gt=0, le=60, description="First retry's backoff, seconds (then doubled)."
    )
    backoff_max_secs: float = Field(
        default=10.0, gt=0, le=600, description="Longest backoff between retries, seconds."
    )
    max_rate_limited: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="429 answers one call rides out (each pauses the whole budget) before failing.",
    )
    retry_after_default_secs: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="Pause after a 429 that names no Retry-After, seconds.",
    )
    max_retry_after_secs: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="Longest Retry-After waited out, seconds; a longer one is cut to this.",
    )
    breaker: BreakerSettings = Field(
        default_factory=BreakerSettings, description="The circuit breaker of each endpoint."
    )


def _policy_problems(policy: HttpPolicySettings, section: str) -> list[ConfigProblem]:
    """The HTTP policy's cross-field checks, named from `section` (`finnhub` or `yahoo`)."""
    name = f"{section}.http"
    problems = []
    if policy.backoff_base_secs > policy.backoff_max_secs:
        problems.append(
            problem(
                ("http", "backoff_base_secs"),
                f"{name}.backoff_base_secs ({policy.backoff_base_secs:g}) must not exceed "
                f"{name}.backoff_max_secs ({policy.backoff_max_secs:g})",
                f"lower {name}.backoff_base_secs or raise {name}.backoff_max_secs",
            )
        )
    if policy.retry_after_default_secs > policy.max_retry_after_secs:
        problems.append(
            problem(
                ("http", "retry_after_default_secs"),
                f"{name}.retry_after_default_secs ({policy.retry_after_default_secs:g}) must not "
                f"exceed {name}.max_retry_after_secs ({policy.max_retry_after_secs:g})",
                f"lower {name}.retry_after_default_secs or raise {name}.max_retry_after_secs",
            )
        )
    return problems


class FinnhubSettings(SettingsSection):
    """Finnhub's REST API: quotes, company news, market status (the key is a secret)."""

    rest_base_url: FinnhubRestUrl = Field(
        default=FINNHUB_REST_URL,
        description="Root of Finnhub's REST API, without the key (it goes in a header).",
    )
    windows: RateWindows = Field(
        default_factory=lambda: _windows((60, 60.0), (30, 1.0)),
        max_length=10,
        description="Finnhub's rate limit, every window at once (free plan: 60 a minute and 30 a "
        "second); every REST call shares it.",
    )
    budget_margin_secs: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description="A call stays in its windows this much longer than from its answer, "
        "seconds: slack for a server that counts a little late.",
    )
    http: HttpPolicySettings = Field(
        default_factory=HttpPolicySettings, description="Timeouts, retries and breakers."
    )
    transport: FinnhubTransportName = Field(
        default="aiohttp",
        description="What sends the REST requests, behind the same budget, retries and breakers: "
        "aiohttp (async, the default: faster, see the README's figures) or finnhub-python (the "
        "official SDK, blocking, run in a worker thread per call).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        raise_if(_policy_problems(self.http, "finnhub"))
        return self


class FeedSettings(SettingsSection):
    """Finnhub's trade WebSocket and the 1-minute bars made from its trades."""

    url: FinnhubFeedUrl = Field(
        default=FINNHUB_FEED_URL,
        description="Finnhub's trade WebSocket, without the token (the key is a secret).",
    )
    max_symbols: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Most symbols watched at once (Finnhub's free plan allows 50).",
    )
    open_timeout_secs: float = Field(
        default=10.0, gt=0, le=300, description="Time limit of one connection attempt, seconds."
    )
    ping_interval_secs: float | None = Field(
        default=20.0,
        gt=0,
        le=600,
        description="Keep-alive ping every this many seconds; null sends none.",
    )
    ping_timeout_secs: float | None = Field(
        default=20.0,
        gt=0,
        le=600,
        description="A ping unanswered this long drops the connection, seconds; null waits on.",
    )
    backoff_initial_secs: float = Field(
        default=0.5, gt=0, le=600, description="Wait before the first reconnect, seconds."
    )
    backoff_max_secs: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait between reconnects, seconds."
    )
    backoff_factor: float = Field(
        default=2.0,
        ge=1,
        le=10,
        description="Each quick failure multiplies the reconnect wait by this.",
    )
    healthy_after_secs: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="A connection up this long resets the reconnect backoff and counts as up even "
        "without a frame, seconds (one dropped sooner, frameless, is a refused attempt).",
    )
    stale_after_secs: float | None = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A connection silent this long while the market is open is replaced, "
        "seconds; null never.",
    )
    max_queued_frames: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="Frames received but not yet read that the connection buffers.",
    )
    lateness_secs: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="A minute closes once trades this far past its end arrive, seconds "
        "(0: the first trade of a later minute closes it; a consolidated feed delivers trades "
        "up to about half a second out of order across frames). Later trades are counted as late.",
    )
    exclude_conditions: list[ConditionCode] = Field(
        default_factory=list,
        max_length=100,
        description="Trade condition codes left out of the bars (Finnhub's, e.g. '12'); [] "
        "keeps every trade.",
    )
    flush_every_secs: float | None = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the clock closes minutes that trades have not, seconds; null: "
        "trades only (replays faster than real time).",
    )
    flush_grace_secs: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="The clock closes a minute this long after its end, seconds.",
    )
    max_pending_events: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Closed minutes waiting to be published before the feed stops reading "
        "(back-pressure).",
    )
    connect_when_idle: bool = Field(
        default=False,
        description="Keep the WebSocket open while nothing is watched (Finnhub allows one "
        "connection per key: false leaves it free between trading days).",
    )
    down_alert_secs: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="How long the feed may be disconnected during a session before the agent "
        "raises an error event, seconds.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.backoff_initial_secs > self.backoff_max_secs:
            raise_if(
                [
                    problem(
                        ("backoff_initial_secs",),
                        f"feed.backoff_initial_secs ({self.backoff_initial_secs:g}) must not "
                        f"exceed feed.backoff_max_secs ({self.backoff_max_secs:g})",
                        "lower feed.backoff_initial_secs or raise feed.backoff_max_secs",
                    )
                ]
            )
        return self


class YahooSettings(SettingsSection):
    """Yahoo's chart endpoint: the daily bars behind ATR and average volume (no key)."""

    base_url: WebUrl = Field(default=YAHOO_URL, description="Root of Yahoo's chart API.")
    user_agent: HeaderValue = Field(
        default=YAHOO_USER_AGENT,
        max_length=500,
        description="User-Agent header sent to Yahoo; it refuses some, a browser's works.",
    )
    windows: RateWindows = Field(
        default_factory=lambda: _windows((100, 60.0), (4, 1.0)),
        max_length=10,
        description="Calls allowed to Yahoo, every window at once; Yahoo publishes no limit, so "
        "these stay well under the rates reported to trigger its 429s.",
    )
    budget_margin_secs: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description="A call stays in its windows this much longer than from its answer, "
        "seconds: slack for a server that counts a little late.",
    )
    http: HttpPolicySettings = Field(
        default_factory=HttpPolicySettings, description="Timeouts, retries and breakers."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        raise_if(_policy_problems(self.http, "yahoo"))
        return self
