"""The `broker` section: paper by default, Alpaca only with its keys, the mode's URLs."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from fin_agent.app.config.broker import AlpacaMode, AlpacaSettings, BrokerKind
from fin_agent.app.config.settings import Settings
from fin_agent.domain.errors import ConfigError


def test_broker_defaults_to_the_paper_broker() -> None:
    assert Settings().broker.kind is BrokerKind.PAPER


def test_alpaca_without_its_keys_is_refused_naming_the_secret() -> None:
    with pytest.raises((ConfigError, ValidationError), match="alpaca_key_id is not set"):
        Settings(broker={"kind": "alpaca"})  # type: ignore[arg-type]


def test_alpaca_with_its_keys_is_accepted() -> None:
    settings = Settings(
        broker={"kind": "alpaca"},  # type: ignore[arg-type]
        alpaca_key_id=SecretStr("k"),
        alpaca_secret_key=SecretStr("s"),
    )
    assert settings.broker.kind is BrokerKind.ALPACA


def test_alpaca_urls_follow_the_mode_unless_given() -> None:
    assert AlpacaSettings().rest_url() == "https://paper-api.alpaca.markets"
    live = AlpacaSettings(mode=AlpacaMode.LIVE)
    assert live.trade_stream_url() == "wss://api.alpaca.markets/stream"
    local = AlpacaSettings(
        base_url="http://127.0.0.1:8765/", stream_url="ws://127.0.0.1:8765/stream"
    )
    assert local.rest_url() == "http://127.0.0.1:8765"
    assert local.trade_stream_url() == "ws://127.0.0.1:8765/stream"
