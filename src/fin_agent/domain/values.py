"""Market values of the trading domain: symbols, bars, trades, quotes and headlines.

All are immutable; prices are `Decimal`, times are aware UTC, and bars are stamped at their start.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import NewType, TypeGuard

from fin_agent.domain.errors import DataError

Symbol = NewType("Symbol", str)

_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.]{0,14}$")
_CLASS_SEPARATORS = str.maketrans({"-": ".", "_": "."})
CENT = Decimal("0.01")
_MAX_VOLUME = 10**15  # above any real volume: what is bigger is a unit error or infinity


def symbol(text: str) -> Symbol:
    """Return `text` as a validated, upper-case ticker symbol; a share class's separator, written
    `.`, `-` or `_` by different sources (BRK.B, BRK-B, ABR_A), is always `.`."""
    cleaned = text.strip().upper().translate(_CLASS_SEPARATORS)
    if not _SYMBOL_RE.match(cleaned):
        raise DataError(
            f"{text!r} is not a ticker symbol: use 1-15 letters, digits and a share class after "
            "'.', '-' or '_', starting with a letter (for example AAPL, BRK.B, BRK-B or ABR_A)"
        )
    return Symbol(cleaned)


class Side(StrEnum):
    """Direction of a trade: long profits when price rises, short when it falls."""

    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        """+1 for long, -1 for short: multiply a price move by it to get P&L per share."""
        return 1 if self is Side.LONG else -1


def require_utc(value: datetime, what: str) -> None:
    """Raise `DataError` unless `value` is timezone-aware UTC."""
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise DataError(f"{what} must be a timezone-aware UTC datetime, got {value!r}")


def _check_ohlc(
    kind: str,
    name: str,
    when: date,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: int,
) -> None:
    """Raise `DataError` for non-finite, non-positive or inconsistent prices and volumes; the
    label is built only then."""
    try:
        if (
            min(open_, high, low, close) > 0
            and high.is_finite()  # the highest price: the others are below it and above 0
            and high >= max(open_, close, low)
            and low <= min(open_, close)
            and 0 <= volume < _MAX_VOLUME
            and (type(volume) is int or _integral(volume))
        ):
            return
    except (InvalidOperation, TypeError, AttributeError):  # NaN or not a Decimal at all
        pass
    what = f"{kind} {name} {when.isoformat()}"
    prices = (open_, high, low, close)
    if not all(isinstance(p, Decimal) and p.is_finite() for p in prices):
        raise DataError(
            f"{what}: prices must be finite numbers, got o={open_} h={high} l={low} c={close}; "
            "fix or drop the row in the source data"
        )
    if not _whole(volume) and not (_integral(volume) and int(volume) < 0):
        raise DataError(
            f"{what}: volume must be a whole number of shares, got {volume!r}; "
            "fix or drop the row in the source data"
        )
    if min(open_, high, low, close) <= 0:
        raise DataError(
            f"{what}: prices must be positive, got o={open_} h={high} l={low} c={close}"
        )
    if high < max(open_, close, low) or low > min(open_, close):
        raise DataError(
            f"{what}: inconsistent OHLC (o={open_} h={high} l={low} c={close}); "
            "high must be the highest price and low the lowest"
        )
    if volume < 0:
        raise DataError(f"{what}: volume must not be negative, got {volume}")


def _integral(value: object) -> TypeGuard[numbers.Integral]:
    """An integer (numpy's too), never a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _whole(volume: object) -> bool:
    """A count of shares: an integer from 0 below `_MAX_VOLUME`."""
    return _integral(volume) and 0 <= int(volume) < _MAX_VOLUME


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """An intraday OHLCV bar, stamped at its start in UTC."""

    symbol: Symbol
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    interval_secs: int = 60

    def __post_init__(self) -> None:
        if self.start.tzinfo is not UTC:
            require_utc(self.start, f"bar start of {self.symbol}")
        _check_ohlc(
            "bar",
            self.symbol,
            self.start,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
        )

    @property
    def end(self) -> datetime:
        """The instant the bar closes (exclusive)."""
        return self.start + timedelta(seconds=self.interval_secs)


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyBar:
    """One regular session's OHLCV for a symbol."""

    symbol: Symbol
    session: date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def __post_init__(self) -> None:
        _check_ohlc(
            "daily bar",
            self.symbol,
            self.session,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """One printed trade (a tick)."""

    symbol: Symbol
    price: Decimal
    size: int
    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is not UTC:  # the label is built only when the check can fail
            require_utc(self.at, f"trade time of {self.symbol}")
        if not (self.price.is_finite() and self.price > 0 and 0 <= self.size < _MAX_VOLUME):
            raise DataError(
                f"trade {self.symbol}: price must be a positive finite number and size a whole "
                f"number of shares, got {self.price} x {self.size}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """Latest price and previous close of a symbol, as a quote endpoint reports them."""

    symbol: Symbol
    last: Decimal
    prev_close: Decimal
    at: datetime

    def __post_init__(self) -> None:
        require_utc(self.at, f"quote time of {self.symbol}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Headline:
    """A company news headline: the catalyst of a gap."""

    symbol: Symbol
    title: str
    source: str
    published_at: datetime
    url: str = ""

    def __post_init__(self) -> None:
        require_utc(self.published_at, f"headline time of {self.symbol}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Premarket:
    """What traded before the open: the last price and the volume up to the scan time.

    `volume` is None when the data has no pre-market bars (a daily-bar backtest, where `last` is
    the day's open); the scanner then skips the pre-market volume rule and records that it did.
    `quoted_prev_close` is the previous session's close as the same source quoted it (Finnhub's
    `pc`), None when it gave none: the scan's second source of the previous close.
    """

    symbol: Symbol
    last: Decimal
    volume: int | None
    as_of: datetime
    quoted_prev_close: Decimal | None = None

    def __post_init__(self) -> None:
        require_utc(self.as_of, f"pre-market time of {self.symbol}")
        if not (isinstance(self.last, Decimal) and self.last.is_finite() and self.last > 0):
            raise DataError(
                f"pre-market of {self.symbol}: the last price must be a positive finite number, "
                f"got {self.last!r}"
            )
        volume = self.volume
        if volume is not None and not _whole(volume):
            raise DataError(
                f"pre-market of {self.symbol}: volume must be a whole number of shares or None "
                f"(no pre-market data), got {volume!r}"
            )
        quoted = self.quoted_prev_close
        if quoted is not None and not (
            isinstance(quoted, Decimal) and quoted.is_finite() and quoted > 0
        ):
            raise DataError(
                f"pre-market of {self.symbol}: the quoted previous close must be a positive finite "
                f"number or None, got {quoted!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One regular trading session of the exchange: its day, open and close in UTC."""

    day: date
    open: datetime
    close: datetime
    early_close: bool = False

    def __post_init__(self) -> None:
        require_utc(self.open, f"session open of {self.day}")
        require_utc(self.close, f"session close of {self.day}")
        if self.close <= self.open:
            raise DataError(f"session {self.day}: close {self.close} is not after open {self.open}")


def utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; refuse naive ones."""
    if value.tzinfo is None:
        raise DataError(f"naive datetime {value!r}: attach its time zone before converting to UTC")
    return value.astimezone(UTC)
