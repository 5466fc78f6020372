"""Leaf converters of the event codec: one JSON value to a domain value, checked, and back.

Decimals travel as their exact string, datetimes, dates and times as ISO 8601, enums by value.
A decoder raises `FieldProblem`, which the codec turns into a `DecodeError` with the field's path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

Convert = Callable[[Any], Any]
_SHOW_CHARS = 40
_EXPECTED = {str: "a string", int: "an integer", bool: "true or false"}


class FieldProblem(Exception):
    """A value in `data` is missing or wrong; `path` collects segments innermost first."""

    def __init__(self, problem: str, *, missing: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.missing = missing
        self.path: list[str] = []

    def at(self, segment: str) -> FieldProblem:
        """Record that the problem sits under `segment` (".name" or "[i]"); returns self."""
        self.path.append(segment)
        return self

    @property
    def where(self) -> str:
        """The path below `data`, outermost first, e.g. ".plan.window.opens_at"."""
        return "".join(reversed(self.path))


def describe(value: Any) -> str:
    """A short description of a JSON value for an error message, never a deep repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return f"number {text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + '...'}"
    if isinstance(value, str):
        cut = value[:_SHOW_CHARS]
        return f"string {cut!r}{'...' if len(value) > _SHOW_CHARS else ''}"
    if isinstance(value, list):
        return f"array of {len(value)} items"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def exact_problem(kind: type, value: Any) -> FieldProblem:
    """The problem of a JSON value that is not of the exact type `kind` (str, int or bool)."""
    return FieldProblem(f"expected {_EXPECTED[kind]}, got {describe(value)}")


def exact(kind: type) -> Convert:
    """A decoder accepting only JSON values of exactly `kind` (so no bool for an int)."""

    def convert(value: Any) -> Any:
        if type(value) is kind:
            return value
        raise exact_problem(kind, value)

    return convert


def parse_datetime(value: Any) -> datetime:
    """An aware datetime from its ISO 8601 string, converted to UTC; naive ones are refused.

    Parsed values are cached (datetimes are immutable, and the bars of one minute share theirs).
    """
    if type(value) is not str:
        raise FieldProblem(f"expected an ISO 8601 datetime string, got {describe(value)}")
    cached = _DATETIMES.get(value)
    if cached is not None:
        return cached
    parsed = _parse_datetime(value)
    if len(_DATETIMES) >= _CACHE_SIZE:
        _DATETIMES.clear()
    _DATETIMES[value] = parsed
    return parsed


def _parse_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldProblem(f"expected an ISO 8601 datetime, got {describe(value)}") from None
    if parsed.tzinfo is UTC:
        return parsed
    if parsed.utcoffset() is None:
        raise FieldProblem(
            f"expected an ISO 8601 datetime with a UTC offset, got naive {describe(value)}"
        )
    return parsed.astimezone(UTC)


_CACHE_SIZE = 8192
_DATETIMES: dict[str, datetime] = {}
_DECIMALS: dict[str, Decimal] = {}


def format_datetime(value: datetime) -> str:
    """ISO 8601 with its offset; a naive datetime is a producer bug and raises ValueError."""
    if value.tzinfo is None:
        raise ValueError(f"cannot encode naive datetime {value!r}: events carry aware UTC times")
    return value.isoformat()


def parse_decimal(value: Any) -> Decimal:
    """A finite Decimal from its string; a JSON number is refused, it would not be exact.

    Parsed values are cached (Decimals are immutable; prices repeat from bar to bar).
    """
    if type(value) is not str:
        raise FieldProblem(f"expected a decimal string, got {describe(value)}")
    cached = _DECIMALS.get(value)
    if cached is not None:
        return cached
    parsed = _parse_decimal(value)
    if len(_DECIMALS) >= _CACHE_SIZE:
        _DECIMALS.clear()
    _DECIMALS[value] = parsed
    return parsed


def _parse_decimal(value: str) -> Decimal:
    try:
        parsed = Decimal(value)
    except (ArithmeticError, ValueError):
        raise FieldProblem(f"expected a decimal string, got {describe(value)}") from None
    if not parsed.is_finite():
        raise FieldProblem(f"expected a finite decimal, got {describe(value)}")
    return parsed


def iso_parser(kind: type[date] | type[time]) -> Convert:
    """A decoder of a date or a time from its ISO 8601 string."""
    parse, what = kind.fromisoformat, kind.__name__

    def convert(value: Any) -> Any:
        if type(value) is str:
            try:
                return parse(value)
            except ValueError:
                pass
        raise FieldProblem(f"expected an ISO 8601 {what}, got {describe(value)}")

    return convert


def enum_parser(kind: type[StrEnum]) -> Convert:
    """A decoder of a StrEnum member from its value."""
    members: dict[str, StrEnum] = {m.value: m for m in kind}
    allowed = ", ".join(members)

    def convert(value: Any) -> Any:
        member = members.get(value) if type(value) is str else None
        if member is None:
            raise FieldProblem(f"expected one of {allowed}, got {describe(value)}")
        return member

    return convert


def optional(inner: Convert) -> Convert:
    """A converter passing None through and converting anything else with `inner`."""

    def convert(value: Any) -> Any:
        return None if value is None else inner(value)

    return convert


def tuple_parser(inner: Convert) -> Convert:
    """A decoder of a tuple from a JSON array, each item decoded by `inner`."""

    def convert(value: Any) -> Any:
        if type(value) is not list:
            raise FieldProblem(f"expected an array, got {describe(value)}")
        try:
            return tuple([inner(item) for item in value])
        except FieldProblem as problem:  # rare: find the item again to name its index
            index = next((i for i, item in enumerate(value) if fails(inner, item)), 0)
            raise problem.at(f"[{index}]") from None

    return convert


def tuple_formatter(inner: Convert | None) -> Convert | None:
    """An encoder of a tuple as a JSON array; None when its items need no conversion."""
    if inner is None:
        return None  # json writes a tuple of plain values as an array by itself
    return lambda value: [inner(item) for item in value]


def fails(convert: Convert, value: Any) -> bool:
    """True when `convert(value)` raises FieldProblem (converters are pure, so it repeats)."""
    try:
        convert(value)
    except FieldProblem:
        return True
    return False
