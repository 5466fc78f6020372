"""`AlpacaRest`: alpaca-py's `TradingClient`, run off the event loop, within budget and breaker.

alpaca-py's REST client is synchronous (`requests`), so each call runs in a worker thread
(`asyncio.to_thread`). Before it, the call takes a slot of the shared Alpaca `RateBudget` and
passes the endpoint's circuit breaker. The SDK's own 429 retry (which sleeps inside the thread,
outside the budget) is switched off: a 429 pauses the shared budget and the call is tried again.
A 4xx answer is a `BrokerRefusal` (the order is wrong, not the connection).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient

from fin_agent.adapters.vendor_http.circuit_breaker import CircuitBreakers
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.domain.errors import AdapterError, ConfigError

log = structlog.get_logger(__name__)
T = TypeVar("T")

ALPACA_WINDOWS: tuple[RateWindow, ...] = (RateWindow(max_calls=200, per_secs=60.0),)
"""Alpaca's trading API allows 200 calls a minute per account."""


class BrokerRefusal(Exception):
    """The broker answered 4xx: `status`, Alpaca's numeric `code` and its `message`."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def duplicate_client_order_id(self) -> bool:
        """Whether this is Alpaca's answer to a client order id it already has."""
        return self.status == 422 and "client_order_id must be unique" in self.message


@dataclass(frozen=True, slots=True, kw_only=True)
class RestPolicy:
    """How often a call is tried again after a 429 or a failure, and the default pause."""

    max_attempts: int = 4
    retry_after_secs: float = 1.0


class AlpacaRest:
    """Calls of one `TradingClient`, each off the loop and within the shared budget."""

    def __init__(
        self,
        client: TradingClient,
        budget: RateBudget,
        breakers: CircuitBreakers,
        policy: RestPolicy | None = None,
    ) -> None:
        self.client = client
        self._budget = budget
        self._breakers = breakers
        self._policy = policy or RestPolicy()

    async def call(self, endpoint: str, fn: Callable[[], T]) -> T:
        """Run `fn` (a `TradingClient` call) for `endpoint`; raise `BrokerRefusal` on a 4xx,
        `AdapterError` once the attempts are used up or while the breaker is open."""
        last = ""
        for _ in range(self._policy.max_attempts):
            ticket = self._breakers.for_endpoint(endpoint).allow()
            await self._budget.acquire()
            try:
                result = await asyncio.to_thread(fn)
            except APIError as error:
                status = error.status_code or 0
                if status == 429:
                    ticket.release()
                    self._budget.pause_for(self._policy.retry_after_secs)
                    last = "429 rate limited"
                    continue
                if status >= 500:
                    ticket.failure(f"HTTP {status}")
                    last = f"HTTP {status}"
                    continue
                ticket.success()
                refusal = _refusal(status, str(error))
                if status in (401, 403) and refusal.code == 40110000:
                    raise ConfigError(
                        "Alpaca refused the key (401): check the alpaca_key_id and "
                        "alpaca_secret_key secrets and broker.alpaca.mode (paper keys only "
                        "work on the paper endpoint)"
                    ) from None
                raise refusal from None
            except (requests.ConnectionError, requests.Timeout) as error:
                ticket.failure(type(error).__name__)
                last = type(error).__name__
                continue
            ticket.success()
            return result
        log.warning("alpaca_call_failed", endpoint=endpoint, reason=last)
        raise AdapterError(
            f"Alpaca {endpoint}: no answer after {self._policy.max_attempts} attempts ({last}); "
            "check the network and Alpaca's status page"
        )


def trading_client(*, key_id: str, secret_key: str, paper: bool, base_url: str) -> TradingClient:
    """alpaca-py's client on `base_url`, with the SDK's sleeping 429 retry switched off (the
    constructor does not take retry settings; `_retry = 0` makes a 429 an `APIError` at once)."""
    client = TradingClient(key_id, secret_key, paper=paper, url_override=base_url or None)
    client._retry = 0
    return client


def _refusal(status: int, text: str) -> BrokerRefusal:
    try:
        body = json.loads(text)
        return BrokerRefusal(status, int(body.get("code", 0)), str(body.get("message", text)))
    except (ValueError, AttributeError):
        if status == 401:
            return BrokerRefusal(status, 40110000, text)
        return BrokerRefusal(status, 0, text)
