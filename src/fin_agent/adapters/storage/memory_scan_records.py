"""`InMemoryScanRecords`: the `ScanRecords` of the `InMemoryStore`, compact in process.

A backtest keeps a year of 7,000-symbol scans here, so nothing is kept as objects per bar or per
symbol-day: each symbol's daily bars are arrays of (session, seq) keys and offsets into one buffer
of the versions' texts (`scan_record_rows` has the rule of versions); each record is a few columns
(its symbols, an index into its distinct windows, its pre-market figures as one text, its
headlines where there are any).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from fin_agent.adapters.codec.values import format_datetime, parse_datetime
from fin_agent.adapters.storage.scan_record_rows import (
    BarMemo,
    BarValues,
    InputRow,
    RecordHead,
    bar_values,
    conflict,
    head_of,
    input_rows,
    rebuild,
    wanted,
    window_sessions,
)
from fin_agent.domain.gap_scanner import UniverseSnapshot
from fin_agent.domain.values import DailyBar, Symbol
from fin_agent.ports.scan_records import RecordSize

_SEQ_BITS = 24
_LAST = (1 << _SEQ_BITS) - 1


class _Series:
    """One symbol's stored bar versions, sorted by (session, seq): keys and where each version's
    text sits in one append-only buffer (few large objects, not one small object per bar: a
    year of them would pin the allocator's arenas)."""

    __slots__ = ("at", "blob", "keys", "size")

    def __init__(self) -> None:
        self.keys = array("q")
        self.at = array("I")
        self.size = array("H")
        self.blob = bytearray()

    def visible(self, session: date, seq: int) -> bytes | None:
        """The version of `session` with the largest seq <= `seq`, as stored text."""
        i = bisect_right(self.keys, (session.toordinal() << _SEQ_BITS) | seq) - 1
        if i < 0 or self.keys[i] >> _SEQ_BITS != session.toordinal():
            return None
        start = self.at[i]
        return bytes(self.blob[start : start + self.size[i]])

    def add(self, session: date, seq: int, text: bytes) -> None:
        key = (session.toordinal() << _SEQ_BITS) | seq
        i = bisect_right(self.keys, key)
        self.keys.insert(i, key)
        self.at.insert(i, len(self.blob))
        self.size.insert(i, len(text))
        self.blob += text


@dataclass(frozen=True, slots=True)
class _Columns:
    """A record's input rows as columns."""

    symbols: tuple[Symbol, ...]
    windows: tuple[str, ...]
    window_at: array[int]
    premarket: str
    """One line per symbol (`last|volume|as_of|quoted`, empty: no pre-market), one object."""
    headlines: dict[int, str]

    def rows(self) -> list[InputRow]:
        out: list[InputRow] = []
        lines = self.premarket.split("\n")
        for i, name in enumerate(self.symbols):
            window = self.windows[self.window_at[i]]
            last, volume, as_of, quoted = (lines[i] or "|||").split("|")
            out.append(
                InputRow(
                    position=i,
                    symbol=name,
                    window=window,
                    bars=len(window_sessions(window)),
                    pm_last=last or None,
                    pm_volume=int(volume) if volume else None,
                    pm_as_of=parse_datetime(as_of) if as_of else None,
                    pm_quoted_prev_close=quoted or None,
                    headlines=self.headlines.get(i),
                )
            )
        return out


def _columns(rows: Sequence[InputRow]) -> _Columns:
    windows: dict[str, int] = {}
    window_at = array("I", [windows.setdefault(r.window, len(windows)) for r in rows])
    return _Columns(
        symbols=tuple(r.symbol for r in rows),
        windows=tuple(windows),
        window_at=window_at,
        premarket="\n".join(
            ""
            if r.pm_last is None or r.pm_as_of is None
            else "|".join(
                (
                    r.pm_last,
                    "" if r.pm_volume is None else str(r.pm_volume),
                    format_datetime(r.pm_as_of),
                    r.pm_quoted_prev_close or "",
                )
            )
            for r in rows
        ),
        headlines={r.position: r.headlines for r in rows if r.headlines is not None},
    )


def _text(values: BarValues) -> bytes:
    return " ".join(str(v) for v in values).encode()


def _values(text: bytes) -> BarValues:
    open_, high, low, close, volume = text.decode().split(" ")
    return (open_, high, low, close, int(volume))


class InMemoryScanRecords:
    """Scan records in compact columns (see the module docstring); the fake of the SQL ones."""

    def __init__(self) -> None:
        self._heads: dict[str, RecordHead] = {}
        self._inputs: dict[str, _Columns] = {}
        self._bars: dict[Symbol, _Series] = {}
        self._memo = BarMemo()

    async def put(self, key: str, snapshot: UniverseSnapshot) -> RecordSize:
        """Keep `snapshot` as record `key` (see `ScanRecords.put`)."""
        rows = input_rows(snapshot)  # refuses what it cannot keep before anything is kept
        head = head_of(key, snapshot, len(self._heads) + 1)
        size = RecordSize(symbols=head.symbols, daily_bars=head.daily_bars)
        if key in self._heads:
            stored = await self.get(key)
            if stored != snapshot:
                raise conflict(key, stored, snapshot)
            return size
        new: list[tuple[DailyBar, bytes]] = []
        for bar in self._memo.unknown(snapshot):
            text = _text(bar_values(bar))
            series = self._bars.get(bar.symbol)
            if series is None or series.visible(bar.session, _LAST) != text:
                new.append((bar, text))
        for bar, text in new:
            self._bars.setdefault(bar.symbol, _Series()).add(bar.session, head.seq, text)
        self._heads[key] = head
        self._inputs[key] = _columns(rows)
        self._memo.learn(snapshot, head.seq)
        return RecordSize(symbols=head.symbols, daily_bars=head.daily_bars, new_bars=len(new))

    async def get(
        self, key: str, *, symbols: Collection[Symbol] | None = None
    ) -> UniverseSnapshot | None:
        """The snapshot stored as `key` (see `ScanRecords.get`)."""
        head = self._heads.get(key)
        if head is None:
            return None
        rows = wanted(self._inputs[key].rows(), symbols)
        bars: dict[tuple[Symbol, date], BarValues] = {}
        for row in rows:
            series = self._bars.get(row.symbol)
            for session in window_sessions(row.window):
                text = None if series is None else series.visible(session, head.seq)
                if text is not None:
                    bars[(row.symbol, session)] = _values(text)
        return rebuild(head, rows, bars)
