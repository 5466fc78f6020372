"""How `JsonHttpClient` reaches a vendor: one GET in, one classified `Outcome` out.

`HttpTransport` is the seam: `AiohttpTransport` (the default) sends the request itself; another
transport (a vendor's SDK, `adapters.finnhub.sdk_transport`) may stand in, and the client's budget,
breakers and retries stay in front of it unchanged. A transport never raises for what the server
or the network did: it says so in the `Outcome`, with secrets redacted from any text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol

import aiohttp
from yarl import URL

EXCERPT_MAX = 200


class OutcomeKind(StrEnum):
    """What one request came to, as the client's retry and error rules see it."""

    OK = "ok"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    REFUSED = "refused"
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One request's result: JSON `data` (floats as `Decimal`) when OK, else why not."""

    kind: OutcomeKind
    status: int | None = None
    data: Any = None
    retry_after_secs: float | None = None
    error: str = ""


class HttpTransport(Protocol):
    """Sends one GET of `path` (below the base URL) with `query`; never raises for the server."""

    async def get(self, path: str, query: Mapping[str, str]) -> Outcome: ...

    async def close(self) -> None: ...


def classify(status: int, excerpt: str, retry_after_secs: float | None) -> Outcome:
    """The outcome of a non-200 answer: 429, 401/403, 404, 5xx/408 (transient), else refused."""
    if status == 429:
        return Outcome(
            kind=OutcomeKind.RATE_LIMITED, status=status, retry_after_secs=retry_after_secs
        )
    if status in (401, 403):
        return Outcome(kind=OutcomeKind.AUTH, status=status, error=excerpt)
    if status == 404:
        return Outcome(kind=OutcomeKind.NOT_FOUND, status=status, error=excerpt)
    if status >= 500 or status == 408:
        return Outcome(kind=OutcomeKind.TRANSIENT, status=status, error=f"HTTP {status}")
    return Outcome(kind=OutcomeKind.REFUSED, status=status, error=excerpt)


def not_json() -> Outcome:
    """A 200 whose body is not JSON (a proxy's page): transient."""
    return Outcome(kind=OutcomeKind.TRANSIENT, status=200, error="HTTP 200 with a non-JSON body")


def timed_out(timeout_secs: float) -> Outcome:
    """No answer within the policy's timeout: transient."""
    return Outcome(kind=OutcomeKind.TRANSIENT, error=f"no answer in {timeout_secs:g} s")


class Redactor:
    """Replaces every secret (longest first) in text bound for a log line or an exception."""

    def __init__(self, secrets: Mapping[str, str] | None) -> None:
        values = (v for v in (secrets or {}).values() if v)
        self._secrets = tuple(sorted(values, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


def retry_after_secs(headers: Mapping[str, str], wall_clock: Callable[[], float]) -> float | None:
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
            return max(0.0, when.timestamp() - wall_clock())
    reset = _seconds(headers.get("X-Ratelimit-Reset"))
    if reset is not None:
        return max(0.0, reset - wall_clock())
    return None


class AiohttpTransport:
    """GET on an aiohttp session (opened on first use unless given); redirects not followed
    unless `follow_redirects` (a redirect to another host would carry the secret headers)."""

    def __init__(
        self,
        base_url: URL,
        *,
        timeout_secs: float,
        headers: Mapping[str, str],
        redact: Redactor,
        wall_clock: Callable[[], float],
        follow_redirects: bool = False,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._base = base_url
        self._timeout_secs = timeout_secs
        self._headers = dict(headers)
        self._redact = redact
        self._wall_clock = wall_clock
        self._follow = follow_redirects
        self._session = session
        self._owns_session = session is None

    async def close(self) -> None:
        """Close the session if this transport opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, path: str, query: Mapping[str, str]) -> Outcome:
        """One GET of `path` below the base URL."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = self._base.joinpath(path.lstrip("/"))
        timeout = aiohttp.ClientTimeout(total=self._timeout_secs)
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
                    return parse_json(body)
                excerpt = self._redact(body[:EXCERPT_MAX].decode("utf-8", "replace"))
                limited = status == 429
                wait = retry_after_secs(response.headers, self._wall_clock) if limited else None
                return classify(status, excerpt, wait)
        except TimeoutError:
            return timed_out(self._timeout_secs)
        except aiohttp.ClientError as exc:
            return Outcome(
                kind=OutcomeKind.TRANSIENT, error=self._redact(f"{type(exc).__name__}: {exc}")
            )


def parse_json(body: bytes | str) -> Outcome:
    """A 200's body as JSON with floats as `Decimal`, or a transient non-JSON outcome."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except ValueError:
        return not_json()
    return Outcome(kind=OutcomeKind.OK, status=200, data=data)


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    try:
        secs = float(str(value))
    except ValueError:
        return None
    return secs if math.isfinite(secs) and secs >= 0 else None
