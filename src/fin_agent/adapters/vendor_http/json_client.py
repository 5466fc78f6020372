"""`JsonHttpClient`: GET JSON from a rate-limited vendor API without hammering or leaking it.

Every attempt passes the endpoint's circuit breaker, then the shared `RateBudget`. A 429 pauses the
budget for the server's Retry-After (or X-Ratelimit-Reset) and tries again, never failing the call
until it has had `max_rate_limited` 429s; 5xx, timeouts and connection errors are retried with
jittered exponential backoff; 401/403 raise `ConfigError` (the key, or a paid endpoint). Secret
headers are sent and never logged: logs name the endpoint path only, and error text is redacted.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import aiohttp
import structlog
from yarl import URL

from fin_agent.adapters.vendor_http.circuit_breaker import (
    BreakerConfig,
    BreakerStats,
    CircuitBreakers,
)
from fin_agent.adapters.vendor_http.rate_budget import RateBudget
from fin_agent.domain.errors import AdapterError, ConfigError, DataError, FinAgentError

log = structlog.get_logger(__name__)

_EXCERPT_MAX = 200


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


class _Kind(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    REFUSED = "refused"
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Outcome:
    kind: _Kind
    status: int | None = None
    data: Any = None
    retry_after_secs: float | None = None
    error: str = ""


class JsonHttpClient:
    """GET JSON from one service's base URL, under a budget, breakers and a retry policy.

    `secret_headers` (an API key) go out with every request and are redacted from any text this
    client logs or raises. Redirects are not followed unless `follow_redirects`: a redirect to
    another host would carry the secret header there.
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
        self._headers = {**(headers or {}), **(secret_headers or {})}
        self._secrets = tuple(
            sorted((v for v in (secret_headers or {}).values() if v), key=len, reverse=True)
        )
        self._follow = follow_redirects
        self._session = session
        self._owns_session = session is None
        self._breakers = CircuitBreakers(service, self._policy.breaker, clock=clock)
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
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
        """Close the HTTP session if this client opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

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
        try:
            return await self._get(endpoint, params, path, not_found_ok=not_found_ok)
        except FinAgentError:
            self._counts["failed"] += 1
            raise

    async def _get(
        self,
        endpoint: str,
        params: Mapping[str, str] | None,
        path: str | None,
        *,
        not_found_ok: bool,
    ) -> Any:
        breaker = self._breakers.for_endpoint(endpoint)
        url = self.base_url.joinpath((path or endpoint).lstrip("/"))
        query = dict(params or {})
        policy = self._policy
        failures = limited = 0
        while True:
            try:
                ticket = breaker.allow()
            except AdapterError as exc:
                self._log.info("http_circuit_open", endpoint=endpoint, error=str(exc))
                raise
            try:
                await self._budget.acquire()
                self._counts["attempts"] += 1
                outcome = await self._attempt(url, query)
            except BaseException:
                ticket.release()
                raise
            match outcome.kind:
                case _Kind.OK:
                    ticket.success()
                    return outcome.data
                case _Kind.NOT_FOUND:
                    ticket.success()
                    if not_found_ok:
                        return None
                    raise DataError(
                        f"{self.service} {endpoint} answered HTTP 404 ({outcome.error}): "
                        "check the symbol"
                    )
                case _Kind.AUTH:
                    ticket.success()
                    self._log.error("http_refused_auth", endpoint=endpoint, status=outcome.status)
                    raise ConfigError(
                        f"{self.service} {endpoint} answered HTTP {outcome.status}: "
                        f"{self._auth_hint}"
                    )
                case _Kind.REFUSED:
                    ticket.success()
                    raise DataError(
                        f"{self.service} {endpoint} refused the request with HTTP "
                        f"{outcome.status} ({outcome.error}): check the symbol and dates asked for"
                    )
                case _Kind.RATE_LIMITED:
                    ticket.release()
                    limited += 1
                    self._counts["rate_limited"] += 1
                    wait = outcome.retry_after_secs
                    if wait is None:
                        wait = policy.retry_after_default_secs
                    wait = min(wait, policy.max_retry_after_secs)
                    self._budget.pause_for(wait)
                    self._log.warning(
                        "http_rate_limited",
                        endpoint=endpoint,
                        pause_secs=round(wait, 3),
                        times_this_call=limited,
                    )
                    if limited > policy.max_rate_limited:
                        raise AdapterError(
                            f"{self.service} {endpoint} answered 429 {limited} times to one call: "
                            "another client may share the key; lower the budget's windows"
                        )
                case _Kind.TRANSIENT:
                    ticket.failure(outcome.error)
                    failures += 1
                    if failures >= policy.max_attempts:
                        self._log.error(
                            "http_failed", endpoint=endpoint, attempts=failures, error=outcome.error
                        )
                        raise AdapterError(
                            f"{self.service} {endpoint} failed {failures} times "
                            f"(last: {outcome.error}); the service or the network is down"
                        )
                    delay = self._backoff(failures)
                    self._counts["retries"] += 1
                    self._log.warning(
                        "http_retrying",
                        endpoint=endpoint,
                        attempt=failures,
                        status=outcome.status,
                        error=outcome.error,
                        delay_secs=round(delay, 3),
                    )
                    await self._sleep(delay)

    def _backoff(self, failures: int) -> float:
        """Equal jitter: half the exponential step, plus up to the other half at random."""
        policy = self._policy
        step = min(policy.backoff_max_secs, policy.backoff_base_secs * 2.0 ** (failures - 1))
        return step / 2 + self._rng.uniform(0, step / 2)

    async def _attempt(self, url: URL, query: Mapping[str, str]) -> _Outcome:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self._policy.timeout_secs)
        try:
            async with self._session.get(
                url,
                params=query,
                headers=self._headers,
                timeout=timeout,
                allow_redirects=self._follow,
            ) as response:
                status = response.status
                body = await response.read()
                if status == 200:
                    return self._parse(body)
                excerpt = self._redact(body[:_EXCERPT_MAX].decode("utf-8", "replace"))
                if status == 429:
                    wait = self._retry_after(response.headers)
                    return _Outcome(kind=_Kind.RATE_LIMITED, status=status, retry_after_secs=wait)
                if status in (401, 403):
                    return _Outcome(kind=_Kind.AUTH, status=status, error=excerpt)
                if status == 404:
                    return _Outcome(kind=_Kind.NOT_FOUND, status=status, error=excerpt)
                if status >= 500 or status == 408:
                    error = f"HTTP {status}"
                    return _Outcome(kind=_Kind.TRANSIENT, status=status, error=error)
                return _Outcome(kind=_Kind.REFUSED, status=status, error=excerpt)
        except TimeoutError:
            error = f"no answer in {self._policy.timeout_secs:g} s"
            return _Outcome(kind=_Kind.TRANSIENT, error=error)
        except aiohttp.ClientError as exc:
            return _Outcome(
                kind=_Kind.TRANSIENT, error=self._redact(f"{type(exc).__name__}: {exc}")
            )

    def _parse(self, body: bytes) -> _Outcome:
        try:
            data = json.loads(body, parse_float=Decimal)
        except ValueError:
            return _Outcome(kind=_Kind.TRANSIENT, status=200, error="HTTP 200 with a non-JSON body")
        return _Outcome(kind=_Kind.OK, status=200, data=data)

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait: `Retry-After` (seconds or an HTTP date), else `X-Ratelimit-Reset`."""
        header = headers.get("Retry-After")
        if header is not None:
            if (secs := _seconds(header)) is not None:
                return secs
            try:
                when = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is not None:
                return max(0.0, when.timestamp() - self._wall_clock())
        reset = _seconds(headers.get("X-Ratelimit-Reset"))
        if reset is not None:
            return max(0.0, reset - self._wall_clock())
        return None

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    try:
        secs = float(str(value))
    except ValueError:
        return None
    return secs if math.isfinite(secs) and secs >= 0 else None
