"""The settings of an Alpaca broker on a local Alpaca server (the demo's `--broker alpaca`)."""

from __future__ import annotations

from pydantic import SecretStr

from fin_agent.app.config.broker import AlpacaMode, BrokerKind
from fin_agent.app.config.settings import Settings

LOCAL_KEY_ID = "local-key"
LOCAL_SECRET_KEY = "local-secret"  # noqa: S105 - the local server's well-known default


def on_local_alpaca(settings: Settings, *, base_url: str, stream_url: str) -> Settings:
    """`settings` with `broker.kind: alpaca` on the local server at `base_url` and `stream_url`,
    its well-known key, and the agent's bars relayed to it (`local_relay`)."""
    alpaca = settings.broker.alpaca.model_copy(
        update={
            "mode": AlpacaMode.PAPER,
            "base_url": base_url,
            "stream_url": stream_url,
            "local_relay": True,
        }
    )
    return settings.model_copy(
        update={
            "broker": settings.broker.model_copy(
                update={"kind": BrokerKind.ALPACA, "alpaca": alpaca}
            ),
            "alpaca_key_id": SecretStr(LOCAL_KEY_ID),
            "alpaca_secret_key": SecretStr(LOCAL_SECRET_KEY),
        }
    )
