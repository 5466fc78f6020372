"""A scan record as rows, shared by every store's `ScanRecords`: a snapshot in, rows out, and back.

A record is three kinds of row:

- its head (`scan_records`): key, trading day, taken_at, prev_session, counts and `seq`, the
  record's place in the order records were stored (1, 2, ...);
- one input row per symbol (`scan_inputs`), in the snapshot's order: the sessions of the daily
  bars its scan saw (`window`: the first session, then each gap in days, see `window_text`), the
  pre-market figures and the headlines (JSON);
- the daily bars (`scan_bars`), each (symbol, session) stored once with the `seq` of the record
  that first saw those values: a record that sees other values for a stored (symbol, session)
  (a split-adjusted refetch) stores them as a new version under its own `seq`.

Record `seq` N reads, for each session of a window, the version with the largest seq <= N: what
the scan saw, whatever later records stored. Prices are kept as their exact decimal text (a scan
saw `12.10` and must be rebuilt with `12.10`, not `12.100000`). `BarMemo` spares a store the
comparison of bars it stored itself as the latest version (a backtest's consecutive windows share
42 of 43 bar objects).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from fin_agent.adapters.codec.values import format_datetime, parse_datetime
from fin_agent.domain.errors import DataError
from fin_agent.domain.gap_scanner import SymbolSnapshot, UniverseSnapshot
from fin_agent.domain.values import DailyBar, Headline, Premarket, Symbol
from fin_agent.ports.scan_records import RecordSize, ScanRecordConflict

BarValues = tuple[str, str, str, str, int]
"""A daily bar's open, high, low and close as exact decimal text, and its volume."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordHead:
    """The head row of a record."""

    key: str
    trading_day: date
    taken_at: datetime
    prev_session: date | None
    seq: int
    symbols: int
    daily_bars: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRow:
    """What one symbol's scan saw, but for its bars' values."""

    position: int
    symbol: Symbol
    window: str
    bars: int
    pm_last: str | None
    pm_volume: int | None
    pm_as_of: datetime | None
    pm_quoted_prev_close: str | None
    headlines: str | None


def new_bars_sql(incoming: str, seq: str) -> str:
    """The INSERT of the bars of table `incoming` that no stored version has, as version `seq`
    (a parameter): the SQL both DuckDB and PostgreSQL run."""
    same = " AND ".join(f'l."{c}" = i."{c}"' for c in ("open", "high", "low", "close", "volume"))
    return (
        'INSERT INTO "scan_bars" ("symbol", "session", "seq", "open", "high", "low", "close", '  # noqa: S608
        '"volume") WITH "latest" AS (SELECT * FROM (SELECT b.*, row_number() OVER (PARTITION BY '
        'b."symbol", b."session" ORDER BY b."seq" DESC) AS "rn" FROM "scan_bars" b JOIN '
        f'{incoming} i ON b."symbol" = i."symbol" AND b."session" = i."session") s '
        'WHERE "rn" = 1) '
        f'SELECT i."symbol", i."session", {seq}, i."open", i."high", i."low", i."close", '
        f'i."volume" FROM {incoming} i LEFT JOIN "latest" l ON l."symbol" = i."symbol" AND '
        f'l."session" = i."session" WHERE l."symbol" IS NULL OR NOT ({same})'
    )


def bar_values(bar: DailyBar) -> BarValues:
    """A bar's values as a store keeps them."""
    return (str(bar.open), str(bar.high), str(bar.low), str(bar.close), bar.volume)


def window_text(sessions: Sequence[date]) -> str:
    """Sessions (ascending) as the first one in ISO form, then each gap in days: a digit when
    under 10, else the number in brackets (`2025-03-03:1113(12)1`); '' for none."""
    if not sessions:
        return ""
    gaps = [(b - a).days for a, b in pairwise(sessions)]
    return sessions[0].isoformat() + ":" + "".join(str(g) if g < 10 else f"({g})" for g in gaps)


def window_sessions(text: str) -> list[date]:
    """The sessions of a `window_text`."""
    if not text:
        return []
    first, _, gaps = text.partition(":")
    day = date.fromisoformat(first)
    out = [day]
    at = 0
    while at < len(gaps):
        if gaps[at] == "(":
            end = gaps.index(")", at)
            step, at = int(gaps[at + 1 : end]), end + 1
        else:
            step, at = int(gaps[at]), at + 1
        day += timedelta(days=step)
        out.append(day)
    return out


def head_of(key: str, snapshot: UniverseSnapshot, seq: int) -> RecordHead:
    """The head row of `snapshot` stored as record `key` with `seq`."""
    return RecordHead(
        key=key,
        trading_day=snapshot.day,
        taken_at=snapshot.taken_at,
        prev_session=snapshot.prev_session,
        seq=seq,
        symbols=len(snapshot.symbols),
        daily_bars=sum(len(s.daily_bars) for s in snapshot.symbols),
    )


def input_rows(snapshot: UniverseSnapshot) -> list[InputRow]:
    """One input row per symbol of `snapshot`, in its order; refuses a snapshot a record cannot
    rebuild exactly (a symbol twice, bars of another symbol, sessions not strictly ascending)."""
    rows: list[InputRow] = []
    seen: set[Symbol] = set()
    for position, item in enumerate(snapshot.symbols):
        if item.symbol in seen:
            raise DataError(f"the snapshot of {snapshot.day} holds {item.symbol} twice")
        seen.add(item.symbol)
        sessions = [b.session for b in item.daily_bars]
        pm = item.premarket
        if (
            any(b.symbol != item.symbol for b in item.daily_bars)
            or any(a >= b for a, b in pairwise(sessions))
            or (pm is not None and pm.symbol != item.symbol)
        ):
            raise DataError(
                f"the snapshot of {item.symbol} on {snapshot.day} holds bars or a pre-market of "
                "another symbol, or sessions out of order: its daily bars must be its own, "
                "oldest first"
            )
        rows.append(
            InputRow(
                position=position,
                symbol=item.symbol,
                window=window_text(sessions),
                bars=len(sessions),
                pm_last=None if pm is None else str(pm.last),
                pm_volume=None if pm is None else pm.volume,
                pm_as_of=None if pm is None else pm.as_of,
                pm_quoted_prev_close=(
                    None
                    if pm is None or pm.quoted_prev_close is None
                    else str(pm.quoted_prev_close)
                ),
                headlines=_headlines_text(item.headlines),
            )
        )
    return rows


def rebuild(
    head: RecordHead,
    rows: Iterable[InputRow],
    bars: Mapping[tuple[Symbol, date], BarValues],
) -> UniverseSnapshot:
    """The snapshot of a record: its head, its input rows (in order) and the bars visible to it
    (each (symbol, session) at its latest version with seq <= the head's)."""
    items: list[SymbolSnapshot] = []
    for row in rows:
        found: list[DailyBar] = []
        for session in window_sessions(row.window):
            values = bars.get((row.symbol, session))
            if values is None:
                raise DataError(
                    f"scan record {head.key!r}: the daily bar of {row.symbol} on {session} is "
                    "missing from the store's scan_bars: the store was edited by hand; restore it "
                    "from a backup"
                )
            found.append(_bar(row.symbol, session, values))
        premarket = None
        if row.pm_last is not None and row.pm_as_of is not None:
            quoted = row.pm_quoted_prev_close
            premarket = Premarket(
                symbol=row.symbol,
                last=Decimal(row.pm_last),
                volume=row.pm_volume,
                as_of=row.pm_as_of,
                quoted_prev_close=None if quoted is None else Decimal(quoted),
            )
        items.append(
            SymbolSnapshot(
                symbol=row.symbol,
                daily_bars=tuple(found),
                premarket=premarket,
                headlines=_headlines(row.headlines),
            )
        )
    return UniverseSnapshot(
        day=head.trading_day,
        taken_at=head.taken_at,
        symbols=tuple(items),
        prev_session=head.prev_session,
    )


def wanted(rows: Iterable[InputRow], symbols: Collection[Symbol] | None) -> list[InputRow]:
    """The rows of `symbols` (every row when None), in their stored order."""
    if symbols is None:
        return list(rows)
    chosen = set(symbols)
    return [r for r in rows if r.symbol in chosen]


def conflict(
    key: str, stored: UniverseSnapshot | None, given: UniverseSnapshot
) -> ScanRecordConflict:
    """The refusal of a different snapshot under a stored record key."""
    what = "another day" if stored is not None and stored.day != given.day else "other inputs"
    return ScanRecordConflict(
        f"scan record {key!r} is stored already with {what}: a scan's inputs are written once. "
        "A second agent scanning the same day with other data? Give each its own store (or "
        "strategy name), or delete the day from the store before scanning it again"
    )


class BarMemo:
    """The bar objects a store last stored or confirmed as the latest version of their (symbol,
    session), one window per symbol: a bar that `is` one of them needs no comparison.

    Valid while no other writer stored a record since (`valid_at`: the store's last seq as this
    memo knows it); a store that sees another seq calls `forget`. It pays only where a market
    hands the same bar objects to consecutive scans (a backtest's replay market reuses each
    window); where it does not (the live market fetches new objects each day) it would hold a
    window of every symbol for nothing, so a scan that finds under half its bars known while the
    memo knew something turns it off for good.
    """

    def __init__(self) -> None:
        self._bars: dict[Symbol, dict[date, DailyBar]] = {}
        self._hits = 0
        self._off = False
        self.valid_at = 0

    def unknown(self, snapshot: UniverseSnapshot) -> list[DailyBar]:
        """The bars of `snapshot` that are not known to be stored as the latest version."""
        out: list[DailyBar] = []
        for item in snapshot.symbols:
            known = self._bars.get(item.symbol)
            if known is None:
                out.extend(item.daily_bars)
                continue
            out.extend(b for b in item.daily_bars if known.get(b.session) is not b)
        self._hits = sum(len(s.daily_bars) for s in snapshot.symbols) - len(out)
        return out

    def learn(self, snapshot: UniverseSnapshot, seq: int) -> None:
        """Every bar of `snapshot` is now the latest version stored, as of record `seq` (the
        snapshot whose `unknown` was asked last)."""
        total = sum(len(s.daily_bars) for s in snapshot.symbols)
        if self._bars and 2 * self._hits < total:
            self._off = True  # the market makes new bar objects: knowing them saves nothing
        if self._off:
            self.forget()
            return
        for item in snapshot.symbols:
            self._bars[item.symbol] = {b.session: b for b in item.daily_bars}
        self.valid_at = seq

    def forget(self) -> None:
        """Another writer may have stored versions: trust nothing known."""
        self._bars.clear()
        self.valid_at = 0


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _bar(symbol: Symbol, session: date, values: BarValues) -> DailyBar:
    open_, high, low, close, volume = values
    return DailyBar(
        symbol=symbol,
        session=session,
        open=Decimal(open_),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(close),
        volume=volume,
    )


def _headlines_text(headlines: Sequence[Headline]) -> str | None:
    if not headlines:
        return None
    return json.dumps(
        [[h.symbol, h.title, h.source, format_datetime(h.published_at), h.url] for h in headlines],
        separators=(",", ":"),
    )


def _headlines(text: str | None) -> tuple[Headline, ...]:
    if text is None:
        return ()
    return tuple(
        Headline(symbol=Symbol(s), title=t, source=src, published_at=parse_datetime(at), url=url)
        for s, t, src, at, url in json.loads(text)
    )


class StaleMemo(Exception):
    """Another writer stored records since the memo learnt its bars: write again, unaided."""


Write = Callable[
    [str, UniverseSnapshot, Sequence[InputRow], Sequence[DailyBar]],
    Awaitable[tuple[int, int] | None],
]


async def put_record(
    key: str,
    snapshot: UniverseSnapshot,
    memo: BarMemo,
    write: Write,
    read: Callable[[str], Awaitable[UniverseSnapshot | None]],
) -> RecordSize:
    """A SQL store's `ScanRecords.put`: `write` stores the record in one transaction given the
    bars the memo does not vouch for (its seq and new bars, or None when the key is stored
    already; `StaleMemo` when another writer came between); a stored key must hold `snapshot`
    (`read` it back), else `ScanRecordConflict`."""
    rows = input_rows(snapshot)
    size = head_of(key, snapshot, 0)
    try:
        made = await write(key, snapshot, rows, memo.unknown(snapshot))
    except StaleMemo:
        memo.forget()
        made = await write(key, snapshot, rows, memo.unknown(snapshot))
    except BaseException:
        memo.forget()
        raise
    if made is None:  # stored already: the same inputs, or a refusal
        stored = await read(key)
        if stored != snapshot:
            raise conflict(key, stored, snapshot)
        return RecordSize(symbols=size.symbols, daily_bars=size.daily_bars)
    seq, new = made
    memo.learn(snapshot, seq)
    return RecordSize(symbols=size.symbols, daily_bars=size.daily_bars, new_bars=new)
