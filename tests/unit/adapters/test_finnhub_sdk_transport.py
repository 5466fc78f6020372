"""The finnhub-python transport's own refusals; its requests, 429s, 5xx, timeouts and redirects run
through tests/integration/test_finnhub_rest.py, on both transports."""

from __future__ import annotations

import pytest

from fin_agent.adapters.finnhub.rest import TOKEN_HEADER, FinnhubRest
from fin_agent.adapters.finnhub.sdk_transport import FinnhubSdkTransport
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.domain.errors import ConfigError


@pytest.mark.asyncio
async def test_an_endpoint_without_an_sdk_call_names_the_transport_to_use() -> None:
    transport = FinnhubSdkTransport(
        "http://127.0.0.1:9/api/v1", secret_headers={TOKEN_HEADER: "k"}, timeout_secs=1.0
    )
    try:
        with pytest.raises(
            ConfigError,
            match=r"^finnhub /stock/candle has no finnhub-python call here: set "
            r"finnhub.transport: aiohttp \(the SDK transport covers /company-news, /quote, ",
        ):
            await transport.get("/stock/candle", {"symbol": "AAPL"})
    finally:
        await transport.close()


def test_an_unknown_transport_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^finnhub transport 'requests' is unknown: set finnhub.transport to aiohttp or "
        "finnhub-python$",
    ):
        FinnhubRest("https://finnhub.io/api/v1", "key", RateBudget(), transport="requests")  # type: ignore[arg-type]
