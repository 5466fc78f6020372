"""The `broker` section: which broker takes the orders (the paper broker, or Alpaca).

The Alpaca key and secret are secrets (`alpaca_key_id`, `alpaca_secret_key` in the secrets
folder or `FIN_AGENT_ALPACA_KEY_ID` / `FIN_AGENT_ALPACA_SECRET_KEY`), never in config.yaml.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BrokerKind(StrEnum):
    """Which broker the orders go to."""

    PAPER = "paper"
    ALPACA = "alpaca"


class AlpacaMode(StrEnum):
    """Alpaca's paper account or the live one (different keys, different URLs)."""

    PAPER = "paper"
    LIVE = "live"


class AlpacaSettings(BaseModel):
    """Where Alpaca is, and how the broker paces, guards and reconciles its calls."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    mode: AlpacaMode = Field(
        default=AlpacaMode.PAPER,
        description="paper (paper-api.alpaca.markets) or live (api.alpaca.markets): the URLs "
        "below default to the mode's, and the keys must be of the same mode.",
    )
    base_url: str = Field(
        default="",
        max_length=500,
        description="REST base URL without /v2 (empty: the mode's; the local server: "
        "http://127.0.0.1:8765).",
    )
    stream_url: str = Field(
        default="",
        max_length=500,
        description="trade_updates WebSocket URL (empty: the mode's; the local server: "
        "ws://127.0.0.1:8765/stream).",
    )
    calls_per_minute: int = Field(
        default=200, ge=1, le=10_000, description="Alpaca's trading API rate limit per account."
    )
    budget_margin_secs: float = Field(
        default=1.0, ge=0, le=60, description="Each call counts this much longer in the budget."
    )
    reconcile_interval_secs: float = Field(
        default=60.0, gt=0, le=3600, description="How often positions and equity are reconciled."
    )
    breaker_failures: int = Field(
        default=5, ge=1, le=100, description="Failures in a row that open the circuit breaker."
    )
    breaker_cooldown_secs: float = Field(
        default=30.0, gt=0, le=3600, description="How long an open breaker refuses calls."
    )
    data_url: str = Field(
        default="https://data.alpaca.markets",
        max_length=500,
        description="Market data base URL without /v2 (the local server: its REST URL).",
    )
    feed: Literal["iex", "sip"] = Field(
        default="iex",
        description="Market data feed: iex (free plan; IEX's trades only, so its pre-market "
        "volume is IEX's share) or sip (every exchange; a paid plan).",
    )
    snapshot_symbols_per_call: int = Field(
        default=500, ge=1, le=1000, description="Symbols in one /v2/stocks/snapshots call."
    )
    bar_symbols_per_call: int = Field(
        default=200, ge=1, le=1000, description="Symbols in one /v2/stocks/bars call."
    )
    local_relay: bool = Field(
        default=False,
        description="The local Alpaca server only: hand it the simulated day's bars so it fills "
        "on them (the demo, tests). Never with the real Alpaca.",
    )

    def rest_url(self) -> str:
        """The REST base URL in force."""
        if self.base_url:
            return self.base_url.rstrip("/")
        live = self.mode is AlpacaMode.LIVE
        return "https://api.alpaca.markets" if live else "https://paper-api.alpaca.markets"

    def trade_stream_url(self) -> str:
        """The trade_updates URL in force."""
        if self.stream_url:
            return self.stream_url
        live = self.mode is AlpacaMode.LIVE
        return f"wss://{'api' if live else 'paper-api'}.alpaca.markets/stream"


class BrokerSettings(BaseModel):
    """The broker section."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    kind: BrokerKind = Field(
        default=BrokerKind.PAPER,
        description="paper: the simulated broker; alpaca: Alpaca (keys as secrets).",
    )
    alpaca: AlpacaSettings = Field(
        default_factory=AlpacaSettings, description="Alpaca's URLs, rate limit and reconciling."
    )
