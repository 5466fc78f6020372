"""The wiring of `fin-agent run --session-replay DAY`: a recorded day served by local servers.

From the bar files (`--data`): a local Yahoo chart server holds every symbol's daily bars before
the day; a local Finnhub server answers each symbol's quote as at the scan (the pre-market price,
or the day's open when the files have no pre-market bars, and the previous close as `pc`) and
plays the day's 1-minute bars as trades on its WebSocket (four trades a bar, which the feed
aggregates back to the same bar). The live agent is `build_live`'s, on a settable clock the
`SessionDriver` moves, with its own data folder (`data_dir/session-replay/DAY`, a DuckDB store,
emptied first) so a replay never mixes with a real day's records. The broker is the configured
one (paper by default).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from fin_agent.adapters.finnhub.local import LocalFinnhub, TapeTrade, bar_trades
from fin_agent.adapters.memory import FixedClock
from fin_agent.adapters.yahoo.local import LocalYahoo
from fin_agent.app.bootstrap.core import exchange_calendar
from fin_agent.app.bootstrap.live import build_live
from fin_agent.app.config.settings import Settings
from fin_agent.app.live.agent import LiveAgent
from fin_agent.app.live.session_replay import SessionDriver
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.values import Bar, DailyBar, Symbol
from fin_agent.ports.market_data import RecordedMarketData

KEY = "local-session-replay"  # the local server's key: no real key is ever sent anywhere
HISTORY_SESSIONS = 400  # daily bars served before the day: more than any scan rule reads
STARTS = time(8, 30)  # the clock starts here, before the scan's collection
ENDS = time(16, 30)  # and stops here, after the report job (close + 15m)


class MinuteTape:
    """The day's trades by minute, sent through the local Finnhub server (`SessionTape`)."""

    def __init__(self, server: LocalFinnhub, bars: Sequence[Bar]) -> None:
        self._server = server
        self._trades: dict[datetime, list[TapeTrade]] = {}
        for bar in bars:
            prices = (float(bar.open), float(bar.high), float(bar.low), float(bar.close))
            trades = bar_trades(bar.symbol, bar.start, prices, bar.volume)
            self._trades.setdefault(bar.start, []).extend(trades)

    @property
    def minutes(self) -> list[datetime]:
        """The starts of the minutes with trades, in order."""
        return sorted(self._trades)

    async def send(self, minute: datetime) -> int:
        """Send the minute's trades in one frame; how many went to a watching connection."""
        return int(await self._server.send_trades(self._trades.get(minute, [])))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionReplay:
    """What `replay_session` runs: the agent, the driver of its clock, the tape, the span."""

    agent: LiveAgent
    driver: SessionDriver
    tape: MinuteTape
    start: datetime
    end: datetime


@asynccontextmanager
async def session_replay(
    settings: Settings,
    day: date,
    market: RecordedMarketData,
    *,
    speed: float,
    out: TextIO | None = None,
) -> AsyncIterator[SessionReplay]:
    """Start the local servers with `day` from `market`, and wire the live agent against them."""
    zone = ZoneInfo(settings.timezone)
    symbols = list(await market.symbols())
    bars = list(await market.session_bars(day, symbols))
    if not bars:
        have = market.sessions()
        span = f"{have[0]} to {have[-1]}" if have else "none"
        raise ConfigError(
            f"the bar files hold no 1-minute bars of {day} (their sessions: {span}): "
            "give --data a file with that day's intraday bars"
        )
    daily = {s: list(await market.daily_bars(s, day, HISTORY_SESSIONS)) for s in symbols}
    scan_at = datetime.combine(day, time(9, 0), zone).astimezone(UTC)
    quotes = {s: await _quote(market, s, day, scan_at, daily[s]) for s in symbols}
    async with (
        LocalFinnhub(token=KEY) as finnhub,
        LocalYahoo({s: b for s, b in daily.items() if b}) as yahoo,
    ):
        for sym, quote in quotes.items():
            if quote is not None:
                finnhub.rest.set("/quote", quote, sym)
        replay = _settings(settings, day, symbols, finnhub, yahoo)
        clock = FixedClock(datetime.combine(day, STARTS, zone).astimezone(UTC))
        driver = SessionDriver(clock, speed=speed)
        agent = await build_live(
            replay,
            clock=clock,
            calendar=exchange_calendar(replay),
            waiter=driver.waiter,
            out=out,
        )
        yield SessionReplay(
            agent=agent,
            driver=driver,
            tape=MinuteTape(finnhub, bars),
            start=clock.now(),
            end=datetime.combine(day, ENDS, zone).astimezone(UTC),
        )


async def _quote(
    market: RecordedMarketData,
    sym: Symbol,
    day: date,
    scan_at: datetime,
    daily: Sequence[DailyBar],
) -> Mapping[str, Any] | None:
    """Finnhub's `/quote` of `sym` as at the scan: its pre-market price, stamped before the scan,
    and the previous close; None without a price (the quote then says the symbol is unknown)."""
    premarket = await market.premarket(sym, day, scan_at)
    if premarket is None or not daily:
        return None
    at = min(premarket.as_of, scan_at - timedelta(minutes=1))
    last, prev = float(premarket.last), float(daily[-1].close)
    return {
        "c": last,
        "pc": prev,
        "o": last,
        "h": last,
        "l": last,
        "d": round(last - prev, 4),
        "dp": round(100 * (last - prev) / prev, 4),
        "t": int(at.timestamp()),
    }


def _settings(
    settings: Settings,
    day: date,
    symbols: Sequence[Symbol],
    finnhub: LocalFinnhub,
    yahoo: LocalYahoo,
) -> Settings:
    """The live market's settings pointed at the local servers, in a data folder of the day's."""
    data_dir = settings.data_dir / "session-replay" / day.isoformat()
    shutil.rmtree(data_dir, ignore_errors=True)  # a replay starts afresh, never resumes
    data_dir.mkdir(parents=True)
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "finnhub_api_key": SecretStr(KEY),
            "market": settings.market.model_copy(update={"source": "finnhub"}),
            "scan": settings.scan.model_copy(update={"universe": list(symbols)}),
            "finnhub": settings.finnhub.model_copy(update={"rest_base_url": finnhub.rest_url}),
            "feed": settings.feed.model_copy(
                update={"url": finnhub.ws_url, "stale_after_secs": None}
            ),
            "yahoo": settings.yahoo.model_copy(update={"base_url": yahoo.base_url}),
            "news": settings.news.model_copy(update={"source": "off"}),
            "store": settings.store.model_copy(update={"kind": "duckdb"}),
            "schedule": settings.schedule.model_copy(
                update={
                    "calendar_start": day - timedelta(days=2 * HISTORY_SESSIONS),
                    "calendar_end": day + timedelta(days=30),
                }
            ),
        }
    )
