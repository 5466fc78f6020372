"""Candles: the stored minute bars bucketed by time, the same answer from every store.

A candle is one symbol's minute bars of one trading day within one bucket: minute buckets are
aligned on 2000-01-03 00:00 UTC (TimescaleDB's `time_bucket` origin: whole minutes, hours and
days of UTC, and so of New York time too), a `1d` bucket is the exchange's calendar day (every
minute of an XNYS trading day, pre-market to post-market, falls on it). Open is the first minute's
open, close the last minute's close, high and low the extremes, volume the sum.

The SQL is written once per engine: `candles_query` buckets `bars_1m` with DuckDB's `time_bucket`,
TimescaleDB's `time_bucket` and `first`/`last`, or plain PostgreSQL's `date_bin` and ordered
`array_agg`. On TimescaleDB `5m` and `1d` come from the continuous aggregates `bars_5m` and
`bars_1d` (`cagg_sql`, `cagg_query`), refreshed over the window read first (`refresh_window`).
`candles_of` is the same computation in Python: the in-memory store's, the reference of the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Final, Literal, TypeVar
from zoneinfo import ZoneInfo

from fin_agent.adapters.storage.queries import Query, quote
from fin_agent.ports.store import CANDLE_COLUMNS, CandleWidth, Row

__all__ = [
    "CAGGS",
    "EXCHANGE_TIMEZONE",
    "Dialect",
    "cagg_query",
    "cagg_sql",
    "candles_of",
    "candles_query",
    "refresh_window",
]

V = TypeVar("V")
Dialect = Literal["duckdb", "postgres", "timescale"]
EXCHANGE_TIMEZONE: Final = "America/New_York"
"""The zone of every `trading_day` (XNYS): a `1d` candle starts at its midnight."""
ORIGIN: Final = datetime(2000, 1, 3, tzinfo=UTC)
CAGGS: Final[Mapping[str, CandleWidth]] = {"bars_5m": CandleWidth.M5, "bars_1d": CandleWidth.D1}
"""TimescaleDB's continuous aggregates of `bars_1m`, by name, and the width of their candles."""
_ZONE = ZoneInfo(EXCHANGE_TIMEZONE)


def _interval(width: CandleWidth) -> str:
    return f"INTERVAL '{int(width.span.total_seconds()) // 60} minutes'"


def _bucket(width: CandleWidth, dialect: Dialect, ts: str) -> str:
    column = quote("start")
    if width is CandleWidth.D1:
        if dialect == "postgres":
            zone = f"'{EXCHANGE_TIMEZONE}'"
            return f"(date_trunc('day', {column} AT TIME ZONE {zone}) AT TIME ZONE {zone})"
        prefix = f"{ts}." if dialect == "timescale" else ""
        return f"{prefix}time_bucket(INTERVAL '1 day', {column}, '{EXCHANGE_TIMEZONE}')"
    if dialect == "postgres":
        return f"date_bin({_interval(width)}, {column}, TIMESTAMPTZ '{ORIGIN.isoformat()}')"
    prefix = f"{ts}." if dialect == "timescale" else ""
    return f"{prefix}time_bucket({_interval(width)}, {column})"


def _first_last(dialect: Dialect, ts: str) -> tuple[str, str]:
    start, open_, close = quote("start"), quote("open"), quote("close")
    if dialect == "duckdb":
        return f"arg_min({open_}, {start})", f"arg_max({close}, {start})"
    if dialect == "timescale":
        return f"{ts}.first({open_}, {start})", f"{ts}.last({close}, {start})"
    return (
        f"(array_agg({open_} ORDER BY {start}))[1]",
        f"(array_agg({close} ORDER BY {start} DESC))[1]",
    )


def _select(width: CandleWidth, dialect: Dialect, ts: str, volume: str) -> str:
    bucket = _bucket(width, dialect, ts)
    first, last = _first_last(dialect, ts)
    return (
        f'SELECT "symbol", "trading_day", {bucket} AS "start", {first} AS "open", '
        f'max("high") AS "high", min("low") AS "low", {last} AS "close", '
        f'{volume} AS "volume", count(*) AS "minutes"'
    )


def _where(day: date | None, symbol: str | None) -> tuple[str, tuple[object, ...]]:
    params: list[object] = []
    conditions = []
    if day is not None:
        params.append(day)
        conditions.append(f'"trading_day" = ${len(params)}')
    if symbol is not None:
        params.append(symbol)
        conditions.append(f'"symbol" = ${len(params)}')
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), tuple(params)


_ORDER: Final = ' ORDER BY 3, "symbol" COLLATE "C"'


def candles_query(
    width: CandleWidth,
    *,
    dialect: Dialect,
    day: date | None = None,
    symbol: str | None = None,
    schema: str | None = None,
    ts: str = "public",
) -> Query:
    """`CANDLE_COLUMNS` of `bars_1m` bucketed by `width` in `dialect` (`ts`: TimescaleDB's
    schema, quoted), on `day` and of `symbol` when given, by start then symbol."""
    where, params = _where(day, symbol)
    sql = (
        _select(width, dialect, ts, 'CAST(sum("volume") AS BIGINT)')
        + f" FROM {quote('bars_1m', schema)}{where}"
        + f' GROUP BY "symbol", "trading_day", {_bucket(width, dialect, ts)}'
        + _ORDER
    )
    return Query(sql, params)


def cagg_sql(name: str, schema: str, ts: str) -> str:
    """CREATE the continuous aggregate `name` of `CAGGS` in `schema` (none of its rows yet)."""
    width = CAGGS[name]
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {quote(name, schema)} "
        "WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS "
        + _select(width, "timescale", ts, 'sum("volume")')
        + f" FROM {quote('bars_1m', schema)}"
        + f' GROUP BY "symbol", "trading_day", {_bucket(width, "timescale", ts)}'
        + " WITH NO DATA"
    )


def cagg_query(
    name: str, *, day: date | None = None, symbol: str | None = None, schema: str | None = None
) -> Query:
    """`CANDLE_COLUMNS` from the continuous aggregate `name`, as `candles_query` orders them."""
    where, params = _where(day, symbol)
    columns = ", ".join(
        'CAST("volume" AS bigint) AS "volume"' if c == "volume" else quote(c)
        for c in CANDLE_COLUMNS
    )
    sql = f"SELECT {columns} FROM {quote(name, schema)}{where}" + _ORDER  # noqa: S608
    return Query(sql, params)


def day_start(day: date) -> datetime:
    """The exchange's midnight starting `day`, in UTC."""
    return datetime.combine(day, time(0), _ZONE).astimezone(UTC)


def refresh_window(day: date | None) -> tuple[datetime | None, datetime | None]:
    """The window of buckets to refresh before reading `day` (every bucket when None)."""
    if day is None:
        return None, None
    return day_start(day), day_start(day + timedelta(days=1))


def bucket_start(start: datetime, width: CandleWidth) -> datetime:
    """The start of the `width` bucket holding a minute bar starting at `start`."""
    if width is CandleWidth.D1:
        return day_start(start.astimezone(_ZONE).date())
    span = width.span
    return ORIGIN + ((start - ORIGIN) // span) * span


def candles_of(bars: Iterable[Row], width: CandleWidth) -> list[dict[str, object]]:
    """`bars_1m` rows bucketed by `width` in Python, exactly as the SQL of the stores does."""
    groups: dict[tuple[str, date, datetime], list[Row]] = {}
    for bar in bars:
        start = _typed(bar["start"], datetime)
        key = (str(bar["symbol"]), _typed(bar["trading_day"], date), bucket_start(start, width))
        groups.setdefault(key, []).append(bar)
    out = []
    for (symbol, trading_day, start), rows in sorted(
        groups.items(), key=lambda group: (group[0][2], group[0][0])
    ):
        ordered = sorted(rows, key=lambda r: _typed(r["start"], datetime))
        out.append(
            {
                "symbol": symbol,
                "trading_day": trading_day,
                "start": start,
                "open": ordered[0]["open"],
                "high": max(_typed(r["high"], Decimal) for r in rows),
                "low": min(_typed(r["low"], Decimal) for r in rows),
                "close": ordered[-1]["close"],
                "volume": sum(_typed(r["volume"], int) for r in rows),
                "minutes": len(rows),
            }
        )
    return out


def _typed(value: object, kind: type[V]) -> V:
    if not isinstance(value, kind):
        raise TypeError(f"a bars_1m value {value!r} is not a {kind.__name__}")
    return value
