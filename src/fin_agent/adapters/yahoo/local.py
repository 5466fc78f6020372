"""`LocalYahoo`: Yahoo's chart endpoint on 127.0.0.1, for tests and for replaying a day locally.

`GET /v8/finance/chart/{symbol}?period1=&period2=&interval=1d` answers in Yahoo's shape (each
session stamped at its 09:30 open, `indicators.quote[0]` columns, `meta.exchangeTimezoneName`)
from the daily bars it was given; an unknown symbol is Yahoo's 404 "Not Found". Like Yahoo it can
answer a row with every figure null (`null_rows`), reports the splits it was given in
`events.splits` when asked with `events=split` (`splits`), and it counts calls by arrival: past
`max_per_sec` in any second it answers 429 (`limited`). `arrivals` holds every call's arrival.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from fin_agent.domain.errors import DataError
from fin_agent.domain.splits import Split
from fin_agent.domain.values import DailyBar, Symbol, symbol

NY = ZoneInfo("America/New_York")
OPEN = clock_time(9, 30)


class LocalYahoo:
    """The local chart endpoint (see the module docstring); `async with` starts and stops it."""

    def __init__(
        self,
        bars: Mapping[Symbol, Sequence[DailyBar]] | None = None,
        *,
        max_per_sec: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bars: dict[Symbol, list[DailyBar]] = {
            s: sorted(b, key=lambda bar: bar.session) for s, b in (bars or {}).items()
        }
        self.null_rows: set[tuple[Symbol, date]] = set()
        self.splits: dict[Symbol, list[Split]] = {}
        self.max_per_sec = max_per_sec
        self.arrivals: list[float] = []
        self.limited = 0
        self.host = host
        self.port = port
        self._clock = clock
        self._runner: web.AppRunner | None = None

    def add(self, bars: Iterable[DailyBar]) -> None:
        """Serve `bars` too (a bar of a session already served replaces it)."""
        for bar in bars:
            kept = [b for b in self.bars.get(bar.symbol, []) if b.session != bar.session]
            self.bars[bar.symbol] = sorted([*kept, bar], key=lambda b: b.session)

    @property
    def base_url(self) -> str:
        """What `yahoo.base_url` is set to."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen on host:port (port 0: a free one, then `self.port`)."""
        app = web.Application()
        app.router.add_get("/v8/finance/chart/{symbol}", self._chart)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalYahoo:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def most_in_a_second(self) -> int:
        """The most calls that arrived within any one second."""
        stamps = self.arrivals
        return max((sum(1 for s in stamps if t <= s < t + 1.0) for t in stamps), default=0)

    async def _chart(self, request: web.Request) -> web.StreamResponse:
        now = self._clock()
        recent = sum(1 for t in self.arrivals if t > now - 1.0)
        self.arrivals.append(now)
        if self.max_per_sec is not None and recent >= self.max_per_sec:
            self.limited += 1
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        try:
            sym = symbol(request.match_info["symbol"])
            first = datetime.fromtimestamp(int(request.query["period1"]), UTC)
            last = datetime.fromtimestamp(int(request.query["period2"]), UTC)
        except (KeyError, ValueError, DataError):
            error = {"code": "Bad Request", "description": "period1 and period2 are required"}
            return web.json_response({"chart": {"result": None, "error": error}}, status=400)
        if sym not in self.bars:
            error = {"code": "Not Found", "description": "No data found, symbol may be delisted"}
            return web.json_response({"chart": {"result": None, "error": error}}, status=404)
        rows = [b for b in self.bars[sym] if first <= _stamp(b.session) < last]
        result = self._result(sym, rows)
        if "split" in request.query.get("events", "").split(","):
            splits = [s for s in self.splits.get(sym, []) if first <= _stamp(s.session) < last]
            if splits:
                result["events"] = {"splits": {str(_epoch(s.session)): _event(s) for s in splits}}
        return web.json_response({"chart": {"result": [result], "error": None}})

    def _result(self, sym: Symbol, rows: Sequence[DailyBar]) -> dict[str, Any]:
        def column(pick: Callable[[DailyBar], Any]) -> list[Any]:
            return [None if (sym, b.session) in self.null_rows else pick(b) for b in rows]

        return {
            "meta": {"symbol": sym, "exchangeTimezoneName": "America/New_York"},
            "timestamp": [int(_stamp(b.session).timestamp()) for b in rows],
            "indicators": {
                "quote": [
                    {
                        "open": column(lambda b: float(b.open)),
                        "high": column(lambda b: float(b.high)),
                        "low": column(lambda b: float(b.low)),
                        "close": column(lambda b: float(b.close)),
                        "volume": column(lambda b: b.volume),
                    }
                ]
            },
        }


def _epoch(session: date) -> int:
    return int(_stamp(session).timestamp())


def _event(split: Split) -> dict[str, Any]:
    """A split as Yahoo's chart events carry it."""
    return {
        "date": _epoch(split.session),
        "numerator": split.new_shares,
        "denominator": split.old_shares,
        "splitRatio": split.label,
    }


def _stamp(session: date) -> datetime:
    """A session's stamp as Yahoo gives it: its 09:30 open."""
    return datetime.combine(session, OPEN, NY).astimezone(UTC)
