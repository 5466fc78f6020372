"""The scan's snapshot on the wire as columns (`scan.snapshot_taken` v3): one array per field
instead of one object per daily bar, sessions written once. A 7,000-symbol snapshot holds about
300,000 daily bars: as objects they made a 30 MB event; as columns about a third of it.

```
{"day", "taken_at", "prev_session",
 "symbols": [...], "sessions": [distinct ISO days],
 "bars": [daily bars per symbol], "session": [index into sessions per bar],
 "open", "high", "low", "close": [decimal strings per bar], "volume": [ints per bar],
 "pm_last", "pm_volume", "pm_as_of", "pm_quoted_prev_close": [per symbol, null: no pre-market],
 "headlines": [[headline objects] per symbol]}
```
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fin_agent.adapters.codec.values import (
    FieldProblem,
    describe,
    format_datetime,
    iso_parser,
    parse_datetime,
    parse_decimal,
)
from fin_agent.domain.errors import DataError
from fin_agent.domain.gap_scanner import SymbolSnapshot, UniverseSnapshot
from fin_agent.domain.values import DailyBar, Headline, Premarket, Symbol

Convert = Callable[[Any], Any]
_DAY = iso_parser(date)
_COLUMNS = ("open", "high", "low", "close")
_PM = ("pm_last", "pm_volume", "pm_as_of", "pm_quoted_prev_close")


def snapshot_codec(headline: tuple[Convert, Convert]) -> tuple[Convert, Convert]:
    """The encoder and decoder of a `UniverseSnapshot` as columns (`headline`: the codec's own
    pair for a `Headline`)."""
    encode_headline, decode_headline = headline

    def encode(snapshot: UniverseSnapshot) -> dict[str, Any]:
        sessions = sorted({b.session for item in snapshot.symbols for b in item.daily_bars})
        where = {day: i for i, day in enumerate(sessions)}
        bars = [b for item in snapshot.symbols for b in item.daily_bars]
        for item in snapshot.symbols:
            if any(b.symbol != item.symbol for b in item.daily_bars):
                raise ValueError(f"the snapshot of {item.symbol} holds another symbol's bars")
        pms = [item.premarket for item in snapshot.symbols]
        return {
            "day": snapshot.day.isoformat(),
            "taken_at": format_datetime(snapshot.taken_at),
            "prev_session": None if snapshot.prev_session is None else str(snapshot.prev_session),
            "symbols": [item.symbol for item in snapshot.symbols],
            "sessions": [day.isoformat() for day in sessions],
            "bars": [len(item.daily_bars) for item in snapshot.symbols],
            "session": [where[b.session] for b in bars],
            "open": [str(b.open) for b in bars],
            "high": [str(b.high) for b in bars],
            "low": [str(b.low) for b in bars],
            "close": [str(b.close) for b in bars],
            "volume": [b.volume for b in bars],
            "pm_last": [None if p is None else str(p.last) for p in pms],
            "pm_volume": [None if p is None else p.volume for p in pms],
            "pm_as_of": [None if p is None else format_datetime(p.as_of) for p in pms],
            "pm_quoted_prev_close": [
                None if p is None or p.quoted_prev_close is None else str(p.quoted_prev_close)
                for p in pms
            ],
            "headlines": [
                [encode_headline(h) for h in item.headlines] for item in snapshot.symbols
            ],
        }

    def decode(value: Any) -> UniverseSnapshot:
        if type(value) is not dict:
            raise FieldProblem(f"expected an object, got {describe(value)}")
        try:
            return _decode(value, decode_headline)
        except FieldProblem:
            raise
        except DataError as exc:
            raise FieldProblem(str(exc)) from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise FieldProblem(
                f"malformed snapshot columns ({type(exc).__name__}: {exc})"
            ) from None

    return encode, decode


def _decode(value: dict[str, Any], decode_headline: Convert) -> UniverseSnapshot:
    symbols = [_symbol(s) for s in _list(value, "symbols")]
    counts = [_int(n) for n in _list(value, "bars")]
    if len(counts) != len(symbols):
        raise FieldProblem("bars: one count per symbol expected")
    sessions = [_DAY(d) for d in _list(value, "sessions")]
    session = _list(value, "session")
    prices = {name: _list(value, name) for name in _COLUMNS}
    volume = _list(value, "volume")
    total = sum(counts)
    if any(len(column) != total for column in (session, volume, *prices.values())):
        raise FieldProblem(f"daily bar columns: {total} value(s) each expected, one per bar")
    pm = {name: _list(value, name) for name in _PM}
    if any(len(column) != len(symbols) for column in (*pm.values(), value["headlines"])):
        raise FieldProblem("pre-market and headline columns: one value per symbol expected")
    items: list[SymbolSnapshot] = []
    at = 0
    for i, (name, count) in enumerate(zip(symbols, counts, strict=True)):
        bars = tuple(
            DailyBar(
                symbol=name,
                session=sessions[_int(session[row])],
                open=parse_decimal(prices["open"][row]),
                high=parse_decimal(prices["high"][row]),
                low=parse_decimal(prices["low"][row]),
                close=parse_decimal(prices["close"][row]),
                volume=_int(volume[row]),
            )
            for row in range(at, at + count)
        )
        at += count
        premarket = None
        if pm["pm_last"][i] is not None:
            quoted = pm["pm_quoted_prev_close"][i]
            volume_pm = pm["pm_volume"][i]
            premarket = Premarket(
                symbol=name,
                last=parse_decimal(pm["pm_last"][i]),
                volume=None if volume_pm is None else _int(volume_pm),
                as_of=parse_datetime(pm["pm_as_of"][i]),
                quoted_prev_close=None if quoted is None else parse_decimal(quoted),
            )
        headlines: tuple[Headline, ...] = tuple(
            decode_headline(h) for h in _listed(value["headlines"][i])
        )
        items.append(
            SymbolSnapshot(symbol=name, daily_bars=bars, premarket=premarket, headlines=headlines)
        )
    prev = value["prev_session"]
    return UniverseSnapshot(
        day=_DAY(value["day"]),
        taken_at=parse_datetime(value["taken_at"]),
        symbols=tuple(items),
        prev_session=None if prev is None else _DAY(prev),
    )


def snapshot_v2_to_v3(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A v2 snapshot (an object per symbol, one per daily bar) as v3's columns."""
    items = snapshot.get("symbols", [])
    sessions = sorted({b["session"] for item in items for b in item["daily_bars"]})
    where = {day: i for i, day in enumerate(sessions)}
    bars = [b for item in items for b in item["daily_bars"]]
    pms = [item.get("premarket") for item in items]

    def pm(key: str) -> list[Any]:
        return [None if p is None else p.get(key) for p in pms]

    return {
        "day": snapshot["day"],
        "taken_at": snapshot["taken_at"],
        "prev_session": snapshot.get("prev_session"),
        "symbols": [item["symbol"] for item in items],
        "sessions": sessions,
        "bars": [len(item["daily_bars"]) for item in items],
        "session": [where[b["session"]] for b in bars],
        **{name: [b[name] for b in bars] for name in (*_COLUMNS, "volume")},
        "pm_last": pm("last"),
        "pm_volume": pm("volume"),
        "pm_as_of": pm("as_of"),
        "pm_quoted_prev_close": pm("quoted_prev_close"),
        "headlines": [item.get("headlines", []) for item in items],
    }


def _list(value: dict[str, Any], key: str) -> list[Any]:
    return _listed(value[key])


def _listed(found: Any) -> list[Any]:
    if type(found) is not list:
        raise FieldProblem(f"expected an array, got {describe(found)}")
    return found


def _int(value: Any) -> int:
    if type(value) is not int:
        raise FieldProblem(f"expected an integer, got {describe(value)}")
    return value


def _symbol(value: Any) -> Symbol:
    if type(value) is not str:
        raise FieldProblem(f"expected a symbol, got {describe(value)}")
    return Symbol(value)
