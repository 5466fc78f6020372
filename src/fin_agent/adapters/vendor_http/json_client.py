"""`JsonHttpClient`: GET JSON from a rate-limited vendor API without hammering or leaking it.

Every attempt passes the endpoint's circuit breaker, then the shared `RateBudget`. A 429 pauses the
budget for the server's Retry-After (or X-Ratelimit-Reset) and tries again, never failing the call
until it has had `max_rate_limited` 429s; 5xx, timeouts and connection errors are retried with
jittered exponential backoff; 401/403 raise `ConfigError` (the key, or a paid endpoint). Secret
headers are sent and never logged: logs name the endpoint path only, and error text is redacted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from yarl import URL

from fin_agent.adapters.retrying import Again, equal_jitter_backoff, retry_when_asked
from fin_agent.adapters.vendor_http.circuit_breaker import (
    BreakerConfig,
    BreakerStats,
    CircuitBreaker,
    CircuitBreakers,
)
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.adapters.vendor_http.transport import (
    AiohttpTransport,
    HttpTransport,
    Outcome,
    OutcomeKind,
    Redactor,
)
from fin_agent.domain.errors import AdapterError, ConfigError, DataError, FinAgentError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpPolicy:
    """Timeouts, retries, 429 handling and breaker thresholds of one vendor's client."""

    timeout_secs: float = 10.0
    max_attempts: int = 4
    backoff_base_secs: float = 0.5
    backoff_max_secs: float = 10.0
    max_rate_limited: int = 10
    retry_after_default_secs: float = 5.0
    max_retry_after_secs: float = 120.0
    breaker: BreakerConfig = field(default_factory=BreakerConfig)

    def __post_init__(self) -> None:
        if not (
            self.timeout_secs > 0
            and self.max_attempts >= 1
            and 0 < self.backoff_base_secs <= self.backoff_max_secs
            and self.max_rate_limited >= 0
            and 0 <= self.retry_after_default_secs <= self.max_retry_after_secs
        ):
            raise ConfigError(
                f"{self} is not an HTTP policy: use timeout_secs > 0, max_attempts >= 1, "
                "0 < backoff_base_secs <= backoff_max_secs, max_rate_limited >= 0 and "
                "0 <= retry_after_default_secs <= max_retry_after_secs"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpStats:
    """What a client did so far, for metrics."""

    service: str
    calls: int = 0
    attempts: int = 0
    retries: int = 0
    rate_limited: int = 0
    failed: int = 0
    breakers: tuple[BreakerStats, ...] = ()


class JsonHttpClient:
    """GET JSON from one service's base URL, under a budget, breakers and a retry policy.

    `secret_headers` (an API key) go out with every request and are redacted from any text this
    client logs or raises. Redirects are not followed unless `follow_redirects`: a redirect to
    another host would carry the secret header there. `transport` replaces the aiohttp one (then
    `headers`, `secret_headers`, `follow_redirects` and `session` are the transport's business).
    """

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        budget: RateBudget,
        auth_hint: str,
        policy: HttpPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        secret_headers: Mapping[str, str] | None = None,
        follow_redirects: bool = False,
        session: aiohttp.ClientSession | None = None,
        transport: HttpTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        base = URL(base_url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ConfigError(
                f"{service} base URL {base_url!r} is not an http(s) URL: "
                "set it to the API's root, such as https://finnhub.io/api/v1"
            )
        self.service = service
        self.base_url = base
        self._budget = budget
        self._auth_hint = auth_hint
        self._policy = policy or HttpPolicy()
        self._transport = transport or AiohttpTransport(
            base,
            timeout_secs=self._policy.timeout_secs,
            headers={**(headers or {}), **(secret_headers or {})},
            redact=Redactor(secret_headers),
            wall_clock=wall_clock,
            follow_redirects=follow_redirects,
            session=session,
        )
        self._breakers = CircuitBreakers(service, self._policy.breaker, clock=clock)
        self._sleep = sleep
        self._backoff = equal_jitter_backoff(
            initial_secs=self._policy.backoff_base_secs,
            max_secs=self._policy.backoff_max_secs,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
        )
        self._counts = dict.fromkeys(("calls", "attempts", "retries", "rate_limited", "failed"), 0)
        self._log = log.bind(service=service)

    def __repr__(self) -> str:
        return f"JsonHttpClient(service={self.service!r}, base_url={str(self.base_url)!r})"

    @property
    def stats(self) -> HttpStats:
        """The counters so far and every endpoint's breaker."""
        return HttpStats(service=self.service, breakers=self._breakers.stats, **self._counts)

    @property
    def budget(self) -> RateBudget:
        """The rate budget every call of this client waits on."""
        return self._budget

    async def close(self) -> None:
        """Close the transport (and the HTTP session if this client opened it)."""
        await self._transport.close()

    async def get(
        self,
        endpoint: str,
        *,
        params: Mapping[str, str] | None = None,
        path: str | None = None,
        not_found_ok: bool = False,
    ) -> Any:
        """GET `path` (default: `endpoint`) and return its JSON, floats parsed as `Decimal`.

        `endpoint` names the breaker and the log lines (`/v8/finance/chart`, not the symbol's
        path). A 404 returns None when `not_found_ok`, else raises `DataError`.
        """
        self._counts["calls"] += 1
        call = _Call(
            endpoint=endpoint,
            path=path or endpoint,
            query=dict(params or {}),
            not_found_ok=not_found_ok,
            breaker=self._breakers.for_endpoint(endpoint),
        )
        try:
            async for attempt in retry_when_asked(self._sleep):
                with attempt:
                    return await self._once(call)
        except FinAgentError:
            self._counts["failed"] += 1
            raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _once(self, call: _Call) -> Any:
        """One attempt: its data, a final error, or `Again` (after a 429 or a transient failure)."""
        try:
            ticket = call.breaker.allow()
        except AdapterError as exc:
            self._log.info("http_circuit_open", endpoint=call.endpoint, error=str(exc))
            raise
        try:
            async with self._budget.call():
                self._counts["attempts"] += 1
                outcome = await self._transport.get(call.path, call.query)
        except BaseException:
            ticket.release()
            raise
        endpoint = call.endpoint
        match outcome.kind:
            case OutcomeKind.OK:
                ticket.success()
                return outcome.data
            case OutcomeKind.NOT_FOUND:
                ticket.success()
                if call.not_found_ok:
                    return None
                raise DataError(
                    f"{self.service} {endpoint} answered HTTP 404 ({outcome.error}): "
                    "check the symbol"
                )
            case OutcomeKind.AUTH:
                ticket.success()
                self._log.error("http_refused_auth", endpoint=endpoint, status=outcome.status)
                raise ConfigError(
                    f"{self.service} {endpoint} answered HTTP {outcome.status}: {self._auth_hint}"
                )
            case OutcomeKind.REFUSED:
                ticket.success()
                raise DataError(
                    f"{self.service} {endpoint} refused the request with HTTP "
                    f"{outcome.status} ({outcome.error}): check the symbol and dates asked for"
                )
            case OutcomeKind.RATE_LIMITED:
                ticket.release()
                raise self._rate_limited(call, outcome)
            case OutcomeKind.TRANSIENT:
                ticket.failure(outcome.error)
                raise self._transient(call, outcome)

    def _rate_limited(self, call: _Call, outcome: Outcome) -> Again:
        """Pause the budget for the server's wait; `Again` at once (the budget holds the call)."""
        policy = self._policy
        call.limited += 1
        self._counts["rate_limited"] += 1
        wait = outcome.retry_after_secs
        if wait is None:
            wait = policy.retry_after_default_secs
        wait = min(wait, policy.max_retry_after_secs)
        self._budget.pause_for(wait)
        self._log.warning(
            "http_rate_limited",
            endpoint=call.endpoint,
            pause_secs=round(wait, 3),
            times_this_call=call.limited,
        )
        if call.limited > policy.max_rate_limited:
            raise AdapterError(
                f"{self.service} {call.endpoint} answered 429 {call.limited} times to one call: "
                "another client may share the key; lower the budget's windows"
            )
        return Again(0.0)

    def _transient(self, call: _Call, outcome: Outcome) -> Again:
        """`Again` after a jittered backoff, or `AdapterError` after `max_attempts` failures."""
        call.failures += 1
        if call.failures >= self._policy.max_attempts:
            self._log.error(
                "http_failed", endpoint=call.endpoint, attempts=call.failures, error=outcome.error
            )
            raise AdapterError(
                f"{self.service} {call.endpoint} failed {call.failures} times "
                f"(last: {outcome.error}); the service or the network is down"
            )
        delay = self._backoff(call.failures)
        self._counts["retries"] += 1
        self._log.warning(
            "http_retrying",
            endpoint=call.endpoint,
            attempt=call.failures,
            status=outcome.status,
            error=outcome.error,
            delay_secs=round(delay, 3),
        )
        return Again(delay)


@dataclass(slots=True, kw_only=True)
class _Call:
    """One `get`: what it asks, and its 429s and transient failures so far."""

    endpoint: str
    path: str
    query: dict[str, str]
    not_found_ok: bool
    breaker: CircuitBreaker
    failures: int = 0
    limited: int = 0
