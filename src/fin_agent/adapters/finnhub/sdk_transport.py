"""`FinnhubSdkTransport`: Finnhub's REST calls through the official `finnhub-python` client.

`finnhub.Client` is synchronous (requests): each call runs in a worker thread
(`asyncio.to_thread`) behind `JsonHttpClient`'s budget, breakers and retries, like the aiohttp
transport. Three things the SDK does by itself are undone on its own session: the key would go in
the URL's query (`token=`, which ends up in logs), so it travels in the `X-Finnhub-Token` header
instead; redirects would be followed (with the key), so none is; JSON numbers come back as binary
floats, so they become `Decimal` through their shortest repr (exact up to 15 significant digits,
every price). The SDK joins its base URL and paths with a double slash (`/api/v1//quote`), which
Finnhub accepts. Its errors map onto the same outcomes as aiohttp's (`classify`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import finnhub
import requests

from fin_agent.adapters.vendor_http.transport import (
    EXCERPT_MAX,
    Outcome,
    OutcomeKind,
    Redactor,
    classify,
    not_json,
    retry_after_secs,
    timed_out,
)
from fin_agent.domain.errors import ConfigError

_Call = Callable[[Any, Mapping[str, str]], Any]

# The SDK's own method for each endpoint `FinnhubRest` calls, given the query it sends.
_CALLS: dict[str, _Call] = {
    "/quote": lambda client, q: client.quote(q["symbol"]),
    "/company-news": lambda client, q: client.company_news(
        q["symbol"], _from=q["from"], to=q["to"]
    ),
    "/stock/market-status": lambda client, q: client.market_status(exchange=q["exchange"]),
    "/stock/market-holiday": lambda client, q: client.market_holiday(exchange=q["exchange"]),
    "/stock/profile2": lambda client, q: client.company_profile2(**q),
}


class FinnhubSdkTransport:
    """`HttpTransport` on `finnhub.Client`, the key in `secret_headers`, one thread per call."""

    def __init__(
        self,
        base_url: str,
        *,
        secret_headers: Mapping[str, str],
        timeout_secs: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        client = finnhub.Client(api_key=None)  # requests drops a None param: no `token=` in URLs
        client.API_URL = base_url.rstrip("/")
        client.DEFAULT_TIMEOUT = timeout_secs
        session: requests.Session = client._session  # the SDK has one session, no accessor
        session.headers.update(secret_headers)
        session.max_redirects = 0  # a redirect raises TooManyRedirects instead of being followed
        self._client = client
        self._timeout_secs = timeout_secs
        self._redact = Redactor(secret_headers)
        self._wall_clock = wall_clock

    async def get(self, path: str, query: Mapping[str, str]) -> Outcome:
        """The SDK's method for `path`, in a worker thread."""
        call = _CALLS.get(path)
        if call is None:
            raise ConfigError(
                f"finnhub {path} has no finnhub-python call here: set finnhub.transport: aiohttp "
                f"(the SDK transport covers {', '.join(sorted(_CALLS))})"
            )
        return await asyncio.to_thread(self._get, call, dict(query))

    async def close(self) -> None:
        """Close the SDK's requests session."""
        self._client.close()

    def _get(self, call: _Call, query: Mapping[str, str]) -> Outcome:
        try:
            data = call(self._client, query)
        except finnhub.FinnhubAPIException as exc:  # any answer but 2xx
            response: requests.Response = exc.response
            return self._answered(response)
        except finnhub.FinnhubRequestException:  # 2xx, neither JSON nor text
            return not_json()
        except requests.TooManyRedirects as exc:  # a redirect, not followed
            if exc.response is None:  # pragma: no cover - requests always attaches it
                return Outcome(kind=OutcomeKind.REFUSED, error="redirected")
            return self._answered(exc.response)
        except requests.Timeout:
            return timed_out(self._timeout_secs)
        except requests.RequestException as exc:
            return Outcome(
                kind=OutcomeKind.TRANSIENT, error=self._redact(f"{type(exc).__name__}: {exc}")
            )
        if isinstance(data, str):  # the SDK hands text/plain and CSV bodies back as text
            return not_json()
        return Outcome(kind=OutcomeKind.OK, status=200, data=_decimals(data))

    def _answered(self, response: requests.Response) -> Outcome:
        status = response.status_code
        excerpt = self._redact(response.text[:EXCERPT_MAX])
        wait = retry_after_secs(response.headers, self._wall_clock) if status == 429 else None
        return classify(status, excerpt, wait)


def _decimals(value: Any) -> Any:
    """`value` with every float as the `Decimal` of its shortest repr (what the JSON said)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    return value
