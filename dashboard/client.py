"""`AgentClient`: the agent's HTTP API (`/readyz`, `/api/...`) as typed Python replies.

Every call has a timeout and never raises for the network or the agent: a refused connection, a
timeout, an HTTP error or a reply that is not the expected JSON comes back as an `Unreachable`
value that says which URL failed and why, so a page can show it instead of a traceback.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
"""A JSON object as the agent sends it: Decimals as strings, times as ISO 8601."""

DEFAULT_TIMEOUT_SECS = 3.0
NOT_READY = 503


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The agent did not answer as expected: `url` failed for `reason` (HTTP `status` if any)."""

    url: str
    reason: str
    status: int | None = None

    @property
    def down(self) -> bool:
        """True when nothing answered at all (refused, timed out), not an HTTP error reply."""
        return self.status is None

    def __str__(self) -> str:
        if self.status is None:
            return f"agent not reachable at {self.url}: {self.reason}"
        return f"the agent answered HTTP {self.status} for {self.url}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One readiness check: fine, or the reason it is not."""

    ok: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    """`/readyz`: whether every dependency is usable, each check, and what the agent is."""

    ready: bool
    checks: Mapping[str, CheckResult] = field(default_factory=dict)
    version: str | None = None
    store: str | None = None
    config_version: str | None = None

    @property
    def failing(self) -> dict[str, str]:
        """The failing checks by name, with their reasons."""
        return {n: c.reason or "not ok" for n, c in self.checks.items() if not c.ok}


class AgentClient:
    """Reads the agent's API at `base_url` (e.g. http://127.0.0.1:8080) with a timeout per call."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_secs: float = DEFAULT_TIMEOUT_SECS,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_secs = timeout_secs
        self._token = token

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def __repr__(self) -> str:
        return f"AgentClient({self.base_url!r})"

    def get(self, path: str, query: Mapping[str, object] | None = None) -> object | Unreachable:
        """GET `path` and decode its JSON body; an error reply becomes `Unreachable`.

        503 is a valid answer of `/readyz` (not ready, with reasons), so its body is decoded too.
        """
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: str(v) for k, v in query.items()})
        # The URL is the agent's, from config: http(s) only (S310 warns about file: URLs).
        request = urllib.request.Request(url, headers=self._headers())  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_secs) as reply:  # noqa: S310
                body = reply.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip()
            if exc.code == NOT_READY and path == "/readyz":
                body = text.encode()
            else:
                return Unreachable(url, text[:300] or exc.reason or "error", exc.code)
        except urllib.error.URLError as exc:
            return Unreachable(url, _why(exc.reason))
        except TimeoutError:
            return Unreachable(url, f"no answer in {self.timeout_secs:g} s")
        except (OSError, ValueError) as exc:  # reset connections, malformed URLs
            return Unreachable(url, _why(exc))
        try:
            decoded: object = json.loads(body)
        except ValueError:
            return Unreachable(url, "the reply is not JSON: is this the agent's HTTP port?")
        return decoded

    def _object(self, path: str, query: Mapping[str, object] | None = None) -> JSON | Unreachable:
        reply = self.get(path, query)
        if isinstance(reply, Unreachable | dict):
            return reply
        return Unreachable(self.base_url + path, "expected a JSON object")

    def _array(
        self, path: str, query: Mapping[str, object] | None = None
    ) -> list[JSON] | Unreachable:
        reply = self.get(path, query)
        if isinstance(reply, Unreachable):
            return reply
        if isinstance(reply, list) and all(isinstance(r, dict) for r in reply):
            return reply
        return Unreachable(self.base_url + path, "expected a JSON array of objects")

    def readiness(self) -> Readiness | Unreachable:
        """`/readyz`: ready or not, each check with its reason, the version and the store."""
        reply = self._object("/readyz")
        if isinstance(reply, Unreachable):
            return reply
        checks = {
            str(name): CheckResult(bool(c.get("ok")), c.get("reason"))
            for name, c in dict(reply.get("checks") or {}).items()
            if isinstance(c, dict)
        }
        version, store = reply.get("version"), reply.get("store")
        return Readiness(
            ready=bool(reply.get("ready")),
            checks=checks,
            version=str(version) if version is not None else None,
            store=str(store) if store is not None else None,
            config_version=str(reply["config_version"]) if reply.get("config_version") else None,
        )

    def status(self) -> JSON | Unreachable:
        """`/api/status`: the latest day's state, counts, P&L and its last errors."""
        return self._object("/api/status")

    def days(self) -> list[JSON] | Unreachable:
        """`/api/days`: every stored trading day, oldest first, with its report if any."""
        return self._array("/api/days")

    def day(self, day: str) -> JSON | Unreachable:
        """`/api/day/YYYY-MM-DD`: scan, plans, orders, fills, positions, trades, P&L, errors."""
        return self._object(f"/api/day/{urllib.parse.quote(day)}")

    def news(self, day: str, limit: int = 100) -> JSON | Unreachable:
        """`/api/news/YYYY-MM-DD`: the day's headlines about its candidates, newest first."""
        return self._object(f"/api/news/{urllib.parse.quote(day)}", {"limit": limit})

    def candles(self, day: str, width: str = "5m", symbol: str | None = None) -> JSON | Unreachable:
        """`/api/day/YYYY-MM-DD/candles`: the day's minute bars bucketed by `width` (1m, 5m,
        15m, 30m, 1h, 1d) per symbol, or of `symbol` only."""
        query: dict[str, object] = {"width": width}
        if symbol:
            query["symbol"] = symbol
        return self._object(f"/api/day/{urllib.parse.quote(day)}/candles", query)

    def equity(self) -> list[JSON] | Unreachable:
        """`/api/equity`: end-of-day equity across reported days."""
        return self._array("/api/equity")

    def errors(self, limit: int = 50) -> list[JSON] | Unreachable:
        """`/api/errors`: the most recent `error.raised` events across days, newest last."""
        return self._array("/api/errors", {"limit": limit})

    def events(
        self,
        day: str | None = None,
        *,
        types: Collection[str] = (),
        include_bars: bool = False,
        limit: int = 200,
    ) -> JSON | Unreachable:
        """`/api/events`: one day's event log (default the latest), newest last."""
        query: dict[str, object] = {"limit": limit}
        if day:
            query["day"] = day
        if types:
            query["types"] = ",".join(types)
        if include_bars:
            query["exclude"] = ""
        return self._object("/api/events", query)

    def dead_letters(self, limit: int = 100) -> JSON | Unreachable:
        """`/api/dead-letters`: whether the bus has one, how many wait, the oldest `limit`."""
        return self._object("/api/dead-letters", {"limit": limit})

    def research(self) -> JSON | Unreachable:
        """`/api/research`: the summaries of the optimiser's studies, newest first."""
        return self._object("/api/research")

    def config(self) -> JSON | Unreachable:
        """`/api/config`: the effective config as YAML, secrets masked."""
        return self._object("/api/config")

    def command(
        self,
        command: str,
        command_id: str,
        *,
        reason: str = "",
        symbol: str = "",
        plan_id: str = "",
    ) -> JSON | Unreachable:
        """`POST /api/commands`: an operator command (halt, resume, flatten, cancel) under the
        idempotency key `command_id`; the agent answers 202 with the command id."""
        body = {"command": command, "reason": reason, "source": "dashboard"}
        if symbol:
            body["symbol"] = symbol
        if plan_id:
            body["plan_id"] = plan_id
        url = self.base_url + "/api/commands"
        headers = {
            **self._headers(),
            "Content-Type": "application/json",
            "Idempotency-Key": command_id,
        }
        data = json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_secs) as reply:  # noqa: S310
                decoded: object = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip()
            return Unreachable(url, text[:300] or exc.reason or "error", exc.code)
        except (OSError, ValueError) as exc:
            return Unreachable(url, _why(exc))
        return decoded if isinstance(decoded, dict) else Unreachable(url, "expected an object")

    def command_outcome(self, command_id: str) -> JSON | Unreachable:
        """`/api/commands/ID`: applied or refused (with why), pending, or unknown."""
        return self._object(f"/api/commands/{urllib.parse.quote(command_id)}")

    def schedule(self, limit: int = 10) -> JSON | Unreachable:
        """`/api/schedule`: the next scheduled runs, soonest first."""
        return self._object("/api/schedule", {"limit": limit})


def _why(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is the agent running?)"
    return str(reason) or type(reason).__name__
