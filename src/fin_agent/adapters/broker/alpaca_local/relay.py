"""`LocalMarketRelay`: moves the local Alpaca server's market with the agent's bars.

A simulated day traded through `AlpacaBroker` against the local server hands each minute's bars
(and the session's end) to the server's control endpoints, so the server fills on the same bars
the paper broker would. Never used against the real Alpaca.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiohttp

from fin_agent.adapters.broker.alpaca_local.server import bar_json
from fin_agent.domain.errors import AdapterError
from fin_agent.domain.values import Bar


class LocalMarketRelay:
    """POST bars to `/_local/bars` and the close to `/_local/session_end` of `base_url`."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def bars(self, bars: Sequence[Bar]) -> int:
        """The market printed these bars; returns the server's count of trade updates."""
        return await self._post("/_local/bars", {"bars": [bar_json(b) for b in bars]})

    async def session_end(self, at: datetime) -> int:
        """The session closed at `at`; returns the server's count of trade updates."""
        return await self._post("/_local/session_end", {"at": at.isoformat()})

    async def close(self) -> None:
        """Release the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, path: str, body: object) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self._base + path, json=body) as response:
            if response.status != 200:
                raise AdapterError(
                    f"local Alpaca server {self._base}{path} answered {response.status}: "
                    "is it the local server (python -m fin_agent.adapters.broker.alpaca_local)?"
                )
            answer = await response.json()
            return int(answer["seq"])
