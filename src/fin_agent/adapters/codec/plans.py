"""Per-class plans of the event codec: an encode and a decode function made once per dataclass
(the field types checked when the plan is made, the decoder compiled on its first use).

As `dataclasses` builds `__init__`, each plan compiles straight-line code from the class's resolved
type hints, so a hot event pays no per-field loop. When decoding fails, a slow generic pass over
the same converters finds the failing field and its path for the message.
"""

from __future__ import annotations

import dataclasses
import keyword
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, NewType

from fin_agent.adapters.codec.snapshot import snapshot_codec
from fin_agent.adapters.codec.values import (
    Convert,
    FieldProblem,
    describe,
    enum_parser,
    exact,
    format_datetime,
    iso_parser,
    optional,
    parse_datetime,
    parse_decimal,
    tuple_formatter,
    tuple_parser,
)
from fin_agent.domain.events import DomainEvent
from fin_agent.domain.gap_scanner import UniverseSnapshot
from fin_agent.domain.values import Headline

ENVELOPE_FIELDS = frozenset({"id", "occurred_at"})
"""Event fields carried by the envelope (`id`, `ts`) rather than in `data`."""

EXACT_TYPES = (str, int, bool)


@dataclasses.dataclass(frozen=True, slots=True)
class FieldPlan:
    """How one field travels: its encoder (None: JSON takes it as is) and its decoder.

    `decode` is a type for str, int and bool: the generated code checks it inline.
    """

    name: str
    encode: Convert | None
    decode: Convert | type


@dataclasses.dataclass(frozen=True, slots=True)
class EventPlan:
    """How one event class travels: its `data` object, without the envelope's id and time."""

    cls: type[DomainEvent]
    encode: Convert
    decode: Callable[[Any, str, datetime], DomainEvent]


class PlanBuilder:
    """Builds and caches the plan of each dataclass, resolving its type hints once."""

    def __init__(self) -> None:
        self._objects: dict[type, tuple[Convert, Convert]] = {}
        self._events: dict[type, EventPlan] = {}
        # The scan's snapshot travels as columns (hundreds of thousands of daily bars).
        self._objects[UniverseSnapshot] = snapshot_codec(self._object(Headline))

    def event_plan(self, cls: type[DomainEvent]) -> EventPlan:
        """The plan of an event class; raises TypeError for a field the wire cannot carry."""
        plan = self._events.get(cls)
        if plan is None:
            fields = self._fields(cls, ENVELOPE_FIELDS)
            plan = EventPlan(cls, _encoder(cls, fields), _decoder(cls, fields, event=True))
            self._events[cls] = plan
        return plan

    def _object(self, cls: type) -> tuple[Convert, Convert]:
        plan = self._objects.get(cls)
        if plan is None:
            fields = self._fields(cls)
            plan = (_encoder(cls, fields), _decoder(cls, fields, event=False))
            self._objects[cls] = plan
        return plan

    def _fields(self, cls: type, exclude: frozenset[str] = frozenset()) -> tuple[FieldPlan, ...]:
        hints = typing.get_type_hints(cls)
        plans = []
        for field in dataclasses.fields(cls):
            if field.name in exclude:
                continue
            if not field.name.isidentifier() or keyword.iskeyword(field.name):
                raise TypeError(f"{cls.__name__} has a field named {field.name!r}")
            encode, decode = self._converters(hints[field.name], f"{cls.__name__}.{field.name}")
            plans.append(FieldPlan(field.name, encode, decode))
        return tuple(plans)

    def _converters(self, hint: Any, where: str) -> tuple[Convert | None, Convert | type]:
        if isinstance(hint, NewType):
            return self._converters(hint.__supertype__, where)
        if hint in EXACT_TYPES:
            return None, hint
        if hint is Decimal:
            return str, parse_decimal
        if hint is datetime:
            return format_datetime, parse_datetime
        if hint is date or hint is time:
            return hint.isoformat, iso_parser(hint)
        if isinstance(hint, type) and issubclass(hint, StrEnum):
            return None, enum_parser(hint)  # a StrEnum is a str: json writes its value
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self._object(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            encode, decode = self._converters(args[0], where)
            return tuple_formatter(encode), tuple_parser(_convert(decode))
        if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
            encode, decode = self._converters(args[args[0] is type(None)], where)
            return (None if encode is None else optional(encode)), optional(_convert(decode))
        raise TypeError(f"the event codec cannot carry {where}: {hint!r} is not a supported type")


def _convert(decode: Convert | type) -> Convert:
    return exact(decode) if isinstance(decode, type) else decode


def _encoder(cls: type, fields: tuple[FieldPlan, ...]) -> Convert:
    """`encode(obj) -> dict` reading each field and converting the ones JSON cannot take."""
    namespace: dict[str, Any] = {}
    items = []
    for index, field in enumerate(fields):
        value = f"obj.{field.name}"
        if field.encode is not None:
            namespace[f"e{index}"] = field.encode
            value = f"e{index}({value})"
        items.append(f"{field.name!r}: {value}")
    source = f"def encode(obj):\n    return {{{', '.join(items)}}}\n"
    encode: Convert = _compile(cls, source, namespace)["encode"]
    return encode


def _decoder(cls: type, fields: tuple[FieldPlan, ...], *, event: bool) -> Any:
    """`_compiled_decoder`'s function, compiled on its first call: a run that only writes (a
    backtest on the memory store) never decodes, and the fields' types are checked already."""
    compiled: Any = None

    def decode(*args: Any) -> Any:
        nonlocal compiled
        if compiled is None:
            compiled = _compiled_decoder(cls, fields, event=event)
        return compiled(*args)

    return decode


def _compiled_decoder(cls: type, fields: tuple[FieldPlan, ...], *, event: bool) -> Any:
    """`decode(value)` (for an event `decode(value, event_id, occurred_at)`) building `cls`.

    The fast path checks the keys and the plain types, converts and constructs; any problem sends
    it to `locate`, which finds which field failed and why.
    """
    namespace: dict[str, Any] = {
        "cls": cls,
        "keys": frozenset(f.name for f in fields),
        "locate": _locator(fields),
        "FieldProblem": FieldProblem,
        "invalid": _invalid,
    }
    checks, args = [], []
    for index, field in enumerate(fields):
        value = f"value[{field.name!r}]"
        if isinstance(field.decode, type):
            namespace[f"k{index}"] = field.decode
            checks.append(f" or type({value}) is not k{index}")
        else:
            namespace[f"d{index}"] = field.decode
            value = f"d{index}({value})"
        args.append(f"{field.name}={value}")
    params = "value"
    if event:
        params += ", event_id, occurred_at"
        args += ["id=event_id", "occurred_at=occurred_at"]
    source = (
        f"def decode({params}):\n"
        f"    if type(value) is not dict or value.keys() != keys{''.join(checks)}:\n"
        "        raise locate(value)\n"
        "    try:\n"
        f"        return cls({', '.join(args)})\n"
        "    except FieldProblem:\n"
        "        raise locate(value) from None\n"
        "    except Exception as exc:\n"
        "        raise invalid(cls, exc) from None\n"
    )
    return _compile(cls, source, namespace)["decode"]


def _compile(cls: type, source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    code = compile(source, f"<event codec of {cls.__qualname__}>", "exec")
    # The source holds only identifiers of the class's own fields (checked above) and this
    # module's template, exactly as dataclasses generates __init__.
    exec(code, namespace)  # noqa: S102
    return namespace


def _invalid(cls: type, exc: Exception) -> FieldProblem:
    """A constructor refused the values: a domain check (DataError, DomainError) or worse."""
    return FieldProblem(f"invalid {cls.__name__}: {exc}")


def _locator(fields: tuple[FieldPlan, ...]) -> Callable[[Any], FieldProblem]:
    """The slow path: the first problem of `value`, with the field it sits in."""
    names = tuple(f.name for f in fields)
    keys = frozenset(names)
    converters = tuple((f.name, _convert(f.decode)) for f in fields)

    def locate(value: Any) -> FieldProblem:
        if type(value) is not dict:
            return FieldProblem(f"expected an object, got {describe(value)}")
        missing = [name for name in names if name not in value]
        if missing:
            return FieldProblem("required field is missing", missing=True).at(f".{missing[0]}")
        extra = [repr(k) for k in value if k not in keys]
        if extra:
            return FieldProblem(f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(extra)}")
        for name, convert in converters:
            try:
                convert(value[name])
            except FieldProblem as problem:
                return problem.at(f".{name}")
        return FieldProblem("a value changed between two reads")  # converters are pure: unreachable

    return locate
