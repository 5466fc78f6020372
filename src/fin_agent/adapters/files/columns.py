"""Reading a bar file into an Arrow table whose columns are named by role (time, symbol, OHLCV).

CSV (plain or gzip, comma, semicolon, tab or pipe separated, with or without a header) and Parquet
are told apart by their content, not by their name.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from fin_agent.domain.errors import DataError

TIME, SYMBOL = "time", "symbol"
PRICES = ("open", "high", "low", "close")
VOLUME = "volume"

# Accepted names per role, lower case, in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    SYMBOL: ("symbol", "ticker", "name", "sym"),
    TIME: ("datetime", "timestamp", "date", "time", "ts"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    VOLUME: ("volume", "vol", "v"),
}
_KNOWN = frozenset(name for names in ALIASES.values() for name in names)
_HEADERLESS = (TIME, *PRICES, VOLUME)
_DELIMITERS = (",", ";", "\t", "|")
_TIMESTAMP_PARSERS: list[Any] = [pcsv.ISO8601, "%Y%m%d %H%M%S", "%Y%m%d %H:%M:%S"]
REQUIRED_TEXT = (
    "a time column (datetime, timestamp, date or time), open, high, low, close, volume, "
    "and a symbol column (symbol, ticker or Name) unless BarFileSpec.symbol is set"
)


def read_role_table(
    path: Path,
    *,
    symbol_column: str | None,
    need_symbol: bool,
    row_groups: Sequence[int] | None = None,
    roles: Sequence[str] | None = None,
) -> pa.Table:
    """Read `path` and return its role columns renamed to time, symbol, open..volume.

    The symbol column is absent when the file has none and `need_symbol` is false. Of a Parquet
    file, `row_groups` reads only those row groups and `roles` only those roles (all by default).
    """
    head = _head(path)
    if head.startswith(b"PAR1"):
        names = _parquet_names(path)
        chosen = _resolve(path, names, symbol_column=symbol_column, need_symbol=need_symbol)
        if roles is not None:
            chosen = {role: column for role, column in chosen.items() if role in roles}
        try:
            source = pq.ParquetFile(path)
            columns = list(chosen.values())
            if row_groups is None:
                table = source.read(columns=columns)
            else:
                table = source.read_row_groups(list(row_groups), columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read Parquet file {path}: {exc}") from exc
    else:
        if row_groups is not None:
            raise ValueError(f"{path} is not a Parquet file: it has no row groups")
        table, chosen = _read_csv(path, head, symbol_column=symbol_column, need_symbol=need_symbol)
    return pa.table({role: table[column] for role, column in chosen.items()})


def parquet_row_counts(path: Path) -> tuple[int, ...] | None:
    """The rows of each row group of a Parquet file, or None for a CSV file."""
    if not _head(path).startswith(b"PAR1"):
        return None
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read Parquet file {path}: {exc}") from exc
    return tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(4)
    except OSError as exc:
        raise DataError(f"cannot read bar file {path}: {exc}") from exc


def _parquet_names(path: Path) -> list[str]:
    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read Parquet file {path}: {exc}") from exc


def _first_line(path: Path, compressed: bool) -> str:
    try:
        if compressed:
            with gzip.open(path, "rb") as handle:
                raw = handle.readline(1 << 16)
        else:
            with path.open("rb") as handle:
                raw = handle.readline(1 << 16)
        return raw.decode("utf-8-sig").strip("\r\n")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read bar file {path}: not a CSV or Parquet file ({exc})") from exc


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(
    path: Path, head: bytes, *, symbol_column: str | None, need_symbol: bool
) -> tuple[pa.Table, dict[str, str]]:
    compressed = head.startswith(b"\x1f\x8b")
    line = _first_line(path, compressed)
    if not line.strip():
        raise DataError(f"cannot read bar file {path}: its first line is empty")
    delimiter = max(_DELIMITERS, key=line.count)
    fields = next(csv.reader([line], delimiter=delimiter))
    stripped = [field.strip() for field in fields]
    has_header = any(f.lower() in _KNOWN for f in stripped) or not any(map(_is_number, stripped))
    names: list[str] | None = None
    if not has_header:
        if len(fields) != len(_HEADERLESS):
            raise DataError(
                f"{path} has no header row and {len(fields)} columns ({line[:80]!r}): add a header "
                f"row naming them; required: {REQUIRED_TEXT}"
            )
        names = list(_HEADERLESS)
        fields = names
    chosen = _resolve(path, fields, symbol_column=symbol_column, need_symbol=need_symbol)
    column_types: dict[str, pa.DataType] = {}
    if SYMBOL in chosen:
        column_types[chosen[SYMBOL]] = pa.string()
    try:
        source: Any = (
            pa.input_stream(str(path), compression="gzip")
            if compressed
            else pa.OSFile(str(path), mode="r")
        )
        with source:
            table = pcsv.read_csv(
                source,
                read_options=pcsv.ReadOptions(column_names=names),
                parse_options=pcsv.ParseOptions(delimiter=delimiter),
                convert_options=pcsv.ConvertOptions(
                    include_columns=list(chosen.values()),
                    column_types=column_types,
                    timestamp_parsers=_TIMESTAMP_PARSERS,
                ),
            )
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read CSV file {path}: {exc}") from exc
    return table, chosen


def _resolve(
    path: Path, names: list[str], *, symbol_column: str | None, need_symbol: bool
) -> dict[str, str]:
    """Map each role to the file's column name; raise `DataError` listing what is missing."""
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.strip().lower(), name)
    chosen: dict[str, str] = {}
    missing: list[str] = []
    for role, aliases in ALIASES.items():
        if role == SYMBOL and symbol_column is not None:
            aliases = (symbol_column.strip().lower(),)
        found = next((by_lower[a] for a in aliases if a in by_lower), None)
        if found is not None:
            chosen[role] = found
        elif role != SYMBOL or need_symbol or symbol_column is not None:
            missing.append(symbol_column if role == SYMBOL and symbol_column else role)
    if TIME in chosen and chosen[TIME].strip().lower() == "date" and "time" in by_lower:
        raise DataError(
            f"{path} has separate date and time columns: join them into one datetime column "
            "(for example '2019-02-11 09:31:00')"
        )
    if missing:
        hint = ""
        if "price" in by_lower and "open" in missing:
            hint = (
                " (this looks like a file of trade prints, with price and size: aggregate the "
                "trades into OHLCV bars first)"
            )
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}{hint}; "
            f"found {', '.join(names)}; required: {REQUIRED_TEXT}"
        )
    return chosen


def as_floats(path: Path, table: pa.Table, role: str) -> Any:
    """Return a column as float64; text that is not a number becomes null (a dropped row)."""
    column = table[role]
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return pc.cast(column, pa.float64())
    if pa.types.is_null(kind):
        return pa.chunked_array([pa.nulls(len(column), pa.float64())])
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        values = [_float_or_none(v) for v in column.to_pylist()]
        return pa.chunked_array([pa.array(values, pa.float64())])
    raise DataError(f"{path}: column {role} holds {kind}, not numbers")


def _float_or_none(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None
