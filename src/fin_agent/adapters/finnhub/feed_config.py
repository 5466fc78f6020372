"""The settings and the health figures of `FinnhubTradeFeed` (units in the names; no secrets)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from fin_agent.domain.errors import ConfigError
from fin_agent.ports.trade_feed import FeedStats as FeedStats  # the port's value, re-exported


@dataclass(frozen=True, slots=True, kw_only=True)
class FinnhubFeedConfig:
    """How the feed connects, reconnects and watches its connection (secrets go elsewhere)."""

    url: str = "wss://ws.finnhub.io"
    max_symbols: int = 50
    open_timeout_secs: float = 10.0
    close_timeout_secs: float = 2.0
    ping_interval_secs: float | None = 20.0
    ping_timeout_secs: float | None = 20.0
    backoff_initial_secs: float = 0.5
    backoff_max_secs: float = 30.0
    backoff_factor: float = 2.0
    healthy_after_secs: float = 10.0
    stale_after_secs: float | None = 60.0
    malformed_log_every_secs: float = 10.0
    max_frame_bytes: int = 1 << 20
    max_queued_frames: int = 64
    compression: bool = True
    connect_when_idle: bool = False  # False: no connection while the watchlist is empty

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ConfigError(
                f"finnhub feed url {parts.scheme}://{parts.hostname} must be ws:// or wss:// "
                "with a host, for example wss://ws.finnhub.io"
            )
        if "token=" in parts.query:
            raise ConfigError(
                "finnhub feed url must not carry the token: give the API key as the "
                "finnhub_api_key secret and the bare URL, for example wss://ws.finnhub.io"
            )
        positive = {
            "open_timeout_secs": self.open_timeout_secs,
            "close_timeout_secs": self.close_timeout_secs,
            "backoff_initial_secs": self.backoff_initial_secs,
            "backoff_max_secs": self.backoff_max_secs,
            "max_symbols": self.max_symbols,
            "max_frame_bytes": self.max_frame_bytes,
            "max_queued_frames": self.max_queued_frames,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"finnhub feed {name} must be positive, got {value}")
        if self.backoff_factor < 1:
            raise ConfigError(
                f"finnhub feed backoff_factor must be >= 1, got {self.backoff_factor}"
            )
        if self.backoff_max_secs < self.backoff_initial_secs:
            raise ConfigError(
                f"finnhub feed backoff_max_secs ({self.backoff_max_secs}) must be at least "
                f"backoff_initial_secs ({self.backoff_initial_secs})"
            )
        if self.stale_after_secs is not None and self.stale_after_secs <= 0:
            raise ConfigError("finnhub feed stale_after_secs must be positive, or null to disable")

    @property
    def host(self) -> str:
        """The host (and port) of the URL: all that is ever logged of it."""
        return urlsplit(self.url).netloc
