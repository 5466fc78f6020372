"""`MinuteIndex`: some days' minute bars indexed for the replay market: each day's session close
(13:00 on an early close) and regular-session rows, each symbol-day's pre-market series with
running volumes, and the daily bars aggregated from the regular session.

The replay market builds one over all its minute bars when they fit in memory, else one per
chunk of days as the backtest reaches them (and once per chunk up front, to keep the summaries).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np

from fin_agent.adapters.files.bar_rows import PAIR_KEY
from fin_agent.adapters.files.columnar import BarColumns, Decimals, Instants
from fin_agent.adapters.files.stamps import EXCHANGE_TZ
from fin_agent.domain.errors import DataError
from fin_agent.domain.values import Bar, Symbol

__all__ = ["MinuteIndex"]

_US = 1_000_000
_PREMARKET_OPEN_US = (4 * 3600) * _US
_REGULAR_OPEN_US = (9 * 3600 + 30 * 60) * _US
_EARLY_CLOSE_US = 13 * 3600 * _US
_NORMAL_CLOSE_US = 16 * 3600 * _US
_LATE_MORNING_US = (12 * 3600 + 30 * 60) * _US
# A day that trades up to 13:00 and whose 13:00-16:00 volume is under this share of its 09:30-13:00
# volume closed at 13:00: after an early close only thin after-hours trades remain (GOOG 2015-12-24:
# about 1 %). A day whose data stops before 12:30 is a truncated capture, not an early close.
_EARLY_CLOSE_VOLUME_SHARE = 0.05


class MinuteIndex:
    """Minute bars (codes into the market's names) indexed by day and symbol-day.

    `keys` are the symbol-days (code * PAIR_KEY + ordinal) with bars, `premarket_keys` those
    with pre-market bars; `aggregated` one daily bar per symbol-day of the regular session.
    """

    def __init__(self, bars: BarColumns, names: tuple[Symbol, ...]) -> None:
        bars = bars.take(np.lexsort((bars.code, bars.times()[0])))
        start, local = bars.times()
        same = (bars.code[1:] == bars.code[:-1]) & (start[1:] == start[:-1])
        if same.any():
            at = int(np.flatnonzero(same)[0])
            first = Instants().of([int(start[at])])[0]
            raise DataError(
                f"two bars of {names[int(bars.code[at])]} start at {first}: pass each file once"
            )
        self._bars = bars
        keys = bars.code * PAIR_KEY + bars.day
        self.keys = np.unique(keys)
        self.closes: dict[date, datetime] = {}
        self._regular: dict[date, Any] = {}
        days, firsts = np.unique(bars.day, return_index=True)
        lasts = [*firsts[1:].tolist(), len(bars)]
        regular_rows: list[Any] = []
        for ordinal, lo, hi in zip(days.tolist(), firsts.tolist(), lasts, strict=True):
            day = date.fromordinal(ordinal)
            close_us = _session_close_us(local[lo:hi], bars.volume[lo:hi])
            close_at = time(close_us // (3600 * _US), close_us // (60 * _US) % 60)
            self.closes[day] = datetime.combine(day, close_at, EXCHANGE_TZ).astimezone(UTC)
            clock = local[lo:hi]
            found = lo + np.flatnonzero((clock >= _REGULAR_OPEN_US) & (clock < close_us))
            if len(found):
                self._regular[day] = found
                regular_rows.append(found)
        pre = np.flatnonzero((local >= _PREMARKET_OPEN_US) & (local < _REGULAR_OPEN_US))
        self._index_premarket(pre[np.lexsort((start[pre], keys[pre]))])
        self.aggregated = _aggregate(bars, np.concatenate(regular_rows)) if regular_rows else None

    @property
    def regular_days(self) -> list[date]:
        """The days with regular-session bars."""
        return list(self._regular)

    @property
    def days(self) -> list[date]:
        """Every day with bars."""
        return list(self.closes)

    def _index_premarket(self, rows: Any) -> None:
        """Each symbol-day's pre-market rows (by start), with running volume totals."""
        bars = self._bars
        keys = bars.code[rows] * PAIR_KEY + bars.day[rows]
        self._pm_closes = bars.close[rows]
        self._pm_ends = bars.times()[0][rows] + bars.interval_secs * _US
        volumes = bars.volume[rows]
        running = np.cumsum(volumes)
        unique, firsts = np.unique(keys, return_index=True)
        before = np.zeros(len(rows), dtype=np.int64)
        if len(rows):
            group = np.searchsorted(unique, keys)
            offsets = running[firsts] - volumes[firsts]
            before = offsets[group]
        self._pm_volumes = running - before
        lasts = [*firsts[1:].tolist(), len(rows)] if len(firsts) else []
        self._premarket = dict(zip(unique.tolist(), zip(firsts.tolist(), lasts, strict=True),
                                   strict=True))  # fmt: skip
        self.premarket_keys = unique

    def premarket_last(self, key: int, limit_us: int) -> tuple[float, int] | None:
        """The close and running volume of symbol-day `key`'s last pre-market bar ending by
        `limit_us` (µs since 1970), or None without one."""
        found = self._premarket.get(key)
        if found is None:
            return None
        lo, hi = found
        count = int(np.searchsorted(self._pm_ends[lo:hi], limit_us, side="right"))
        if not count:
            return None
        row = lo + count - 1
        return float(self._pm_closes[row]), int(self._pm_volumes[row])

    def session_bars(
        self, day: date, codes: list[int], decimals: Decimals, instants: Instants
    ) -> list[Bar]:
        """The regular-session bars of `day` of symbols `codes`, ordered by (start, symbol)."""
        rows = self._regular.get(day)
        if rows is None:
            return []
        chosen = rows[np.isin(self._bars.code[rows], codes)]
        return self._bars.bars(chosen, decimals, instants)


def _aggregate(bars: BarColumns, rows: Any) -> BarColumns:
    """One daily bar per symbol-day from its regular-session bars."""
    rows = rows[np.lexsort((bars.times()[0][rows], bars.day[rows], bars.code[rows]))]
    keys = bars.code[rows] * PAIR_KEY + bars.day[rows]
    unique, firsts = np.unique(keys, return_index=True)
    lasts = np.append(firsts[1:], len(rows)) - 1
    return BarColumns(
        names=bars.names,
        code=unique // PAIR_KEY,
        day=unique % PAIR_KEY,
        open=bars.open[rows][firsts],
        high=np.maximum.reduceat(bars.high[rows], firsts),
        low=np.minimum.reduceat(bars.low[rows], firsts),
        close=bars.close[rows][lasts],
        volume=np.add.reduceat(bars.volume[rows], firsts),
    )


def _session_close_us(local: Any, volume: Any) -> int:
    """13:00 when the data shows the day closing early, else 16:00 (µs since midnight)."""
    morning = int(volume[(local >= _REGULAR_OPEN_US) & (local < _EARLY_CLOSE_US)].sum())
    afternoon = int(volume[(local >= _EARLY_CLOSE_US) & (local < _NORMAL_CLOSE_US)].sum())
    reaches_close = bool(((local >= _LATE_MORNING_US) & (local < _EARLY_CLOSE_US)).any())
    if reaches_close and afternoon < _EARLY_CLOSE_VOLUME_SHARE * morning:
        return _EARLY_CLOSE_US
    return _NORMAL_CLOSE_US
