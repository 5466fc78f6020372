"""The values describing bar files: their conventions (`BarFileSpec`), what a file turned out to be
(`BarKind`, `FileDecisions`), a file read (`BarFile`) and a row left out of it (`DroppedRow`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fin_agent.adapters.files.checks import DropReason
from fin_agent.adapters.files.columnar import BarColumns, Decimals, Instants
from fin_agent.adapters.files.stamps import BarStamp
from fin_agent.domain.errors import ConfigError, DataError
from fin_agent.domain.values import Bar, DailyBar, Symbol, symbol

__all__ = ["BarFile", "BarFileSpec", "BarKind", "DroppedRow", "FileDecisions"]


class BarKind(StrEnum):
    """Whether a file holds one bar per session (daily) or bars within sessions (intraday)."""

    DAILY = "daily"
    INTRADAY = "intraday"


@dataclass(frozen=True, slots=True, kw_only=True)
class BarFileSpec:
    """The conventions of bar files that the files themselves do not state.

    `timezone` is the zone of naive stamps; `symbol` names the rows of files without a symbol
    column; with `factors_dir` (Lean factor files) prices are split-adjusted, else as traded.
    """

    timezone: str = "America/New_York"
    bar_stamp: BarStamp = BarStamp.AUTO
    symbol: str | None = None
    symbol_column: str | None = None
    factors_dir: Path | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"BarFileSpec.timezone {self.timezone!r} is not an IANA time zone: use for "
                "example America/New_York or UTC"
            ) from exc
        try:
            object.__setattr__(self, "bar_stamp", BarStamp(self.bar_stamp))
        except ValueError as exc:
            raise ConfigError(
                f"BarFileSpec.bar_stamp {self.bar_stamp!r} is not one of start, end or auto"
            ) from exc
        if self.symbol is not None:
            try:
                object.__setattr__(self, "symbol", symbol(self.symbol))
            except DataError as exc:
                raise ConfigError(f"BarFileSpec.symbol: {exc}") from exc

    @property
    def zone(self) -> ZoneInfo:
        """The zone naive stamps are read in."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileDecisions:
    """What holds for a whole file, decided over all its rows: daily or intraday, and of an
    intraday file the bar interval and which instant its stamps mark."""

    kind: BarKind
    interval_secs: int | None = None
    bar_stamp: BarStamp | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DroppedRow:
    """One row left out of a bar file: where it was (1-based data row), whose and why."""

    path: Path
    row: int
    symbol: str
    day: date | None
    reason: DropReason


@dataclass(frozen=True, slots=True, kw_only=True)
class BarFile:
    """One bar file read and normalised: its bars as columns, and the rows dropped.

    `daily` and `intraday` build the bar objects on demand; `unadjusted_symbols` lists symbols
    that had no factor file although `factors_dir` was set. `columns` is None for an intraday
    file a backtest reads day by day (`load_replay`): its bars stay in the file until asked for.
    """

    path: Path
    kind: BarKind
    columns: BarColumns | None = None
    interval_secs: int | None = None
    bar_stamp: BarStamp | None = None
    dropped: tuple[DroppedRow, ...] = ()
    unadjusted_symbols: tuple[Symbol, ...] = ()

    @property
    def daily(self) -> tuple[DailyBar, ...]:
        """The file's daily bars, by symbol then session (none in an intraday file)."""
        if self.columns is None or self.kind is not BarKind.DAILY:
            return ()
        return tuple(self.columns.daily_bars(slice(None), Decimals()))

    @property
    def intraday(self) -> tuple[Bar, ...]:
        """The file's intraday bars, by start then symbol (none in a daily file)."""
        if self.columns is None or self.kind is not BarKind.INTRADAY:
            return ()
        return tuple(self.columns.bars(slice(None), Decimals(), Instants()))
