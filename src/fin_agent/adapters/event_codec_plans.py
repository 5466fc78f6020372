"""Per-class encode/decode plans of the event codec: built once from type hints, then reused.

A plan turns a frozen dataclass into JSON-ready values (Decimal as its exact string, datetimes,
dates and times as ISO 8601, enums by value, tuples as lists) and back, checking every value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, NewType

from fin_agent.domain.events import DomainEvent

Convert = Callable[[Any], Any]
ENVELOPE_FIELDS = frozenset({"id", "occurred_at"})
_SHOW_CHARS = 40


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
    """A short, safe description of a JSON value for an error message."""
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


def parse_datetime(value: Any) -> datetime:
    """An aware datetime from its ISO 8601 string, converted to UTC; naive ones are refused."""
    if type(value) is not str:
        raise FieldProblem(f"expected an ISO 8601 datetime string, got {describe(value)}")
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


def format_datetime(value: datetime) -> str:
    """ISO 8601 with its offset; a naive datetime is a producer bug and raises ValueError."""
    if value.tzinfo is None:
        raise ValueError(f"cannot encode naive datetime {value!r}: events carry aware UTC times")
    return value.isoformat()


def _decimal(value: Any) -> Decimal:
    if type(value) is not str:
        raise FieldProblem(f"expected a decimal string, got {describe(value)}")
    try:
        parsed = Decimal(value)
    except (ArithmeticError, ValueError):
        raise FieldProblem(f"expected a decimal string, got {describe(value)}") from None
    if not parsed.is_finite():
        raise FieldProblem(f"expected a finite decimal, got {describe(value)}")
    return parsed


def _iso(kind: type[date] | type[time], what: str) -> Convert:
    parse = kind.fromisoformat

    def convert(value: Any) -> Any:
        if type(value) is str:
            try:
                return parse(value)
            except ValueError:
                pass
        raise FieldProblem(f"expected an ISO 8601 {what}, got {describe(value)}")

    return convert


def _exact(kind: type, what: str) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is kind:
            return value
        raise FieldProblem(f"expected {what}, got {describe(value)}")

    return convert


def _enum(kind: type[StrEnum]) -> Convert:
    members: dict[str, StrEnum] = {m.value: m for m in kind}
    allowed = ", ".join(members)

    def convert(value: Any) -> Any:
        member = members.get(value) if type(value) is str else None
        if member is None:
            raise FieldProblem(f"expected one of {allowed}, got {describe(value)}")
        return member

    return convert


def _optional(inner: Convert | None) -> Convert:
    def convert(value: Any) -> Any:
        return None if value is None else inner(value) if inner is not None else value

    return convert


def _tuple_decoder(inner: Convert) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is not list:
            raise FieldProblem(f"expected an array, got {describe(value)}")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(inner(item))
            except FieldProblem as problem:
                raise problem.at(f"[{index}]") from None
        return tuple(out)

    return convert


def _tuple_encoder(inner: Convert | None) -> Convert | None:
    if inner is None:
        return None  # json encodes a tuple of plain values as an array by itself
    return lambda value: [inner(item) for item in value]


class PlanBuilder:
    """Builds and caches the converters of each dataclass, resolving its hints once."""

    def __init__(self) -> None:
        self._objects: dict[type, tuple[Convert, Convert]] = {}
        self._events: dict[type, EventPlan] = {}

    def event_plan(self, cls: type[DomainEvent]) -> EventPlan:
        """The plan of an event class: its `data` fields, without id and occurred_at."""
        plan = self._events.get(cls)
        if plan is None:
            names, encoders, decoders = self._fields(cls, ENVELOPE_FIELDS)
            plan = EventPlan(cls, names, _object_encoder(names, encoders), decoders)
            self._events[cls] = plan
        return plan

    def _fields(
        self, cls: type, exclude: frozenset[str] = frozenset()
    ) -> tuple[tuple[str, ...], tuple[Convert | None, ...], tuple[Convert, ...]]:
        hints = typing.get_type_hints(cls)
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in exclude)
        pairs = [self._converters(hints[name], f"{cls.__name__}.{name}") for name in names]
        return names, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)

    def _converters(self, hint: Any, where: str) -> tuple[Convert | None, Convert]:
        """(encoder or None when JSON takes the value as is, decoder) for one type hint."""
        if isinstance(hint, NewType):
            return self._converters(hint.__supertype__, where)
        if hint is str or hint is int or hint is bool:
            what = {str: "a string", int: "an integer", bool: "true or false"}[hint]
            return None, _exact(hint, what)
        if hint is Decimal:
            return str, _decimal
        if hint is datetime:
            return format_datetime, parse_datetime
        if hint is date or hint is time:
            return hint.isoformat, _iso(hint, hint.__name__)
        if isinstance(hint, type) and issubclass(hint, StrEnum):
            return None, _enum(hint)  # a StrEnum is a str: json writes its value
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self._object(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            encode, decode = self._converters(args[0], where)
            return _tuple_encoder(encode), _tuple_decoder(decode)
        if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
            inner = args[0] if args[1] is type(None) else args[1]
            encode, decode = self._converters(inner, where)
            return (_optional(encode) if encode is not None else None), _optional(decode)
        raise TypeError(f"the event codec cannot carry {where}: {hint!r} is not a supported type")

    def _object(self, cls: type) -> tuple[Convert, Convert]:
        plan = self._objects.get(cls)
        if plan is None:
            names, encoders, decoders = self._fields(cls)
            plan = (_object_encoder(names, encoders), _object_decoder(cls, names, decoders))
            self._objects[cls] = plan
        return plan


def _object_encoder(names: tuple[str, ...], encoders: tuple[Convert | None, ...]) -> Convert:
    plan = tuple(zip(names, encoders, strict=True))

    def encode(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, convert in plan:
            value = getattr(obj, name)
            out[name] = value if convert is None else convert(value)
        return out

    return encode


def read_fields(
    value: Any, names: tuple[str, ...], keys: frozenset[str], decoders: tuple[Convert, ...]
) -> dict[str, Any]:
    """The checked, converted fields of one JSON object, as keyword arguments."""
    if type(value) is not dict:
        raise FieldProblem(f"expected an object, got {describe(value)}")
    if value.keys() != keys:
        missing = [name for name in names if name not in value]
        if missing:
            raise FieldProblem("required field is missing", missing=True).at(f".{missing[0]}")
        extra = ", ".join(repr(k) for k in value if k not in keys)
        raise FieldProblem(f"unknown fields {extra}")
    kwargs: dict[str, Any] = {}
    for name, decode in zip(names, decoders, strict=True):
        try:
            kwargs[name] = decode(value[name])
        except FieldProblem as problem:
            raise problem.at(f".{name}") from None
    return kwargs


def construct(cls: type, kwargs: dict[str, Any]) -> Any:
    """`cls(**kwargs)`, any refusal of its __post_init__ turned into a FieldProblem."""
    try:
        return cls(**kwargs)
    except Exception as exc:  # a domain check (DataError, DomainError) or a comparison error
        raise FieldProblem(f"invalid {cls.__name__}: {exc}") from None


def _object_decoder(cls: type, names: tuple[str, ...], decoders: tuple[Convert, ...]) -> Convert:
    keys = frozenset(names)

    def decode(value: Any) -> Any:
        return construct(cls, read_fields(value, names, keys, decoders))

    return decode


@dataclasses.dataclass(frozen=True, slots=True)
class EventPlan:
    """How one event class travels: its `data` fields and their converters."""

    cls: type[DomainEvent]
    names: tuple[str, ...]
    encode: Convert
    decoders: tuple[Convert, ...]
    keys: frozenset[str] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", frozenset(self.names))

    def decode(self, data: Any, *, event_id: str, occurred_at: datetime) -> DomainEvent:
        """The event from its `data` object and envelope id and time; raises FieldProblem."""
        kwargs = read_fields(data, self.names, self.keys, self.decoders)
        kwargs["id"] = event_id
        kwargs["occurred_at"] = occurred_at
        event: DomainEvent = construct(self.cls, kwargs)
        return event
