"""`AlpacaSnapshot`: what the scan needs of one symbol's Alpaca snapshot, and its pre-market.

A snapshot (`/v2/stocks/snapshots`) holds the latest trade, the day's bar and the previous day's
bar. Before the open the day's bar is the pre-market so far (its volume: the pre-market volume,
of the feed asked for: `iex` counts IEX's trades only, `sip` every exchange's); until something
trades on the day, the "day's" bar is still the previous session's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Premarket, Symbol

NY = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlpacaSnapshot:
    """The latest trade, the day's bar's session and volume, and the previous close."""

    symbol: Symbol
    last: Decimal
    last_at: datetime
    day_session: date | None
    day_volume: int
    prev_close: Decimal | None

    def premarket(self, day: date, opens: datetime) -> Premarket | None:
        """The pre-market of `day` (trades from `opens`), None when nothing traded since."""
        if self.last_at < opens or self.day_session != day:
            return None
        return Premarket(
            symbol=self.symbol,
            last=self.last,
            volume=self.day_volume,
            as_of=self.last_at,
            quoted_prev_close=self.prev_close,
        )


def parse_snapshot(symbol: Symbol, body: Any) -> AlpacaSnapshot | None:
    """One symbol's snapshot as Alpaca writes it (None: it has never traded)."""
    try:
        trade = body.get("latestTrade")
        if not trade:
            return None
        day_bar = body.get("dailyBar") or None
        prev_bar = body.get("prevDailyBar") or None
        last = Decimal(trade["p"])
        if not (last.is_finite() and last > 0):
            raise DataError(f"Alpaca snapshot of {symbol}: last price {last} is not a price")
        return AlpacaSnapshot(
            symbol=symbol,
            last=last,
            last_at=_time(trade["t"]),
            day_session=_time(day_bar["t"]).astimezone(NY).date() if day_bar else None,
            day_volume=int(day_bar["v"]) if day_bar else 0,
            prev_close=Decimal(prev_bar["c"]) if prev_bar else None,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise DataError(
            f"Alpaca snapshot of {symbol} is not in the expected shape ({exc!r}); "
            "check broker.alpaca.data_url points at Alpaca's market data API"
        ) from None


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
