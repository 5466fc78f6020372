"""Configuration problems as lines of `<dotted.path>: <what is wrong>; <how to fix>`.

Pydantic's validation errors are translated here, so that no raw `ValidationError` reaches an
operator; every line names the field, the bound or choices, and a fix.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from fin_agent.app.config.urls import mask_url_secrets

Loc = tuple[str | int, ...]

_MAX_SHOWN = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigProblem:
    """One bad field: where it is, what is wrong with it, where it was set, and the fix."""

    loc: Loc
    what: str
    fix: str
    origin: str | None = None

    @property
    def path(self) -> str:
        """The dotted path of the field, e.g. `scan.gap_min_pct` or `scan.universe[2]`."""
        return dotted(self.loc)

    def under(self, prefix: Loc) -> ConfigProblem:
        """The same problem, located below `prefix`."""
        return replace(self, loc=(*prefix, *self.loc))

    def __str__(self) -> str:
        where = f" (set {self.origin})" if self.origin else ""
        return f"{self.path}: {self.what}{where}; {self.fix}"


class SettingsValueError(ValueError):
    """Raised by settings validators: problems located relative to the validated model."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)

    @classmethod
    def single(cls, what: str, fix: str) -> SettingsValueError:
        """A problem with the validated field itself."""
        return cls([ConfigProblem(loc=(), what=what, fix=fix)])


def problem(loc: Loc, what: str, fix: str) -> ConfigProblem:
    """A problem at `loc` (relative to the model being validated)."""
    return ConfigProblem(loc=loc, what=what, fix=fix)


def raise_if(problems: Sequence[ConfigProblem]) -> None:
    """Raise the problems found by a model validator, all at once, if there are any."""
    if problems:
        raise SettingsValueError(problems)


def dotted(loc: Loc) -> str:
    """Join a location as `section.key[index]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def show(value: object) -> str:
    """A short, YAML-flavoured rendering of an input value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(mask_url_secrets(value)) if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def unknown_key(loc: Loc, allowed: Iterable[str], *, what: str = "unknown key") -> ConfigProblem:
    """An unknown key, with the closest allowed key suggested and every allowed key listed."""
    choices = sorted(allowed)
    where = f"in {dotted(loc[:-1])}" if len(loc) > 1 else "at the top level"
    listing = f"allowed keys {where}: {', '.join(choices)}"
    close = difflib.get_close_matches(str(loc[-1]), choices, n=1, cutoff=0.6)
    fix = f"did you mean {close[0]}? {listing}" if close else f"remove it; {listing}"
    return ConfigProblem(loc=loc, what=what, fix=fix)


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside `annotation` (through Optional and Annotated), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin is Annotated or origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            found = model_of(arg)
            if found is not None:
                return found
    return None


def field_at(model: type[BaseModel], loc: Loc) -> FieldInfo | None:
    """The field at `loc` below `model`, or None when the path leaves the model tree."""
    current: type[BaseModel] | None = model
    field: FieldInfo | None = None
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        field = current.model_fields[part]
        current = model_of(field.annotation)
    return field


def model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model (section) at `loc` below `model`; `model` itself for the empty location."""
    if not loc:
        return model
    field = field_at(model, loc)
    return model_of(field.annotation) if field is not None else None


def choices_of(annotation: Any) -> list[str]:
    """The allowed values of a Literal or Enum annotation (through Optional and Annotated)."""
    origin = get_origin(annotation)
    if origin is Literal:
        return [str(arg) for arg in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    if origin is Annotated or origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            found = choices_of(arg)
            if found:
                return found
    return []


def _bounds(field: FieldInfo | None) -> str:
    lower = upper = ""
    for item in field.metadata if field is not None else ():
        if getattr(item, "ge", None) is not None:
            lower = f"from {item.ge}"
        if getattr(item, "gt", None) is not None:
            lower = f"above {item.gt}"
        if getattr(item, "le", None) is not None:
            upper = f"to {item.le}" if lower.startswith("from") else f"up to {item.le}"
        if getattr(item, "lt", None) is not None:
            upper = f"below {item.lt}"
    joiner = " " if upper.startswith("to ") else " and "
    return joiner.join(part for part in (lower, upper) if part)


def _example(field: FieldInfo | None, fallback: str) -> str:
    if field is None:
        return fallback
    default = field.get_default(call_default_factory=True)
    if isinstance(default, time):
        return f'"{default:%H:%M}"'
    if isinstance(default, bool | int | Decimal | str | date) and default != "":
        return show(default) if not isinstance(default, str) else default
    return fallback


def _describe(field: FieldInfo | None) -> str:
    if field is None or not field.description:
        return "check the value"
    return f"expected: {field.description[0].lower()}{field.description[1:].rstrip('.')}"


_RANGE = {
    "greater_than_equal": ("ge", "is below the minimum of"),
    "greater_than": ("gt", "must be greater than"),
    "less_than_equal": ("le", "is above the maximum of"),
    "less_than": ("lt", "must be less than"),
}
_WHOLE = {"int_parsing", "int_type", "int_from_float", "int_parsing_size"}
_NUMBER = {"decimal_parsing", "decimal_type", "float_parsing", "float_type", "finite_number"}
_SECTION = {"model_type", "model_attributes_type", "dict_type"}
_DATE = {"date_parsing", "date_type", "date_from_datetime_parsing", "date_from_datetime_inexact"}


def _translate_one(
    error: dict[str, Any], model: type[BaseModel], secret_fields: frozenset[str]
) -> list[ConfigProblem]:
    loc: Loc = tuple(error["loc"])
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    field = field_at(model, loc)
    secret = bool(loc) and loc[0] in secret_fields
    value = "the secret value" if secret else show(error.get("input"))

    def problem(what: str, fix: str) -> list[ConfigProblem]:
        return [ConfigProblem(loc=loc, what=what, fix=fix)]

    if isinstance(ctx.get("error"), SettingsValueError):
        return [p.under(loc) for p in ctx["error"].problems]
    if kind == "extra_forbidden":
        parent = model_at(model, loc[:-1])
        allowed = set(parent.model_fields) if parent is not None else set()
        if not loc[:-1]:
            allowed = (allowed - secret_fields) | {"profiles"}
        return [unknown_key(loc, allowed)]
    if kind in _RANGE:
        name, phrase = _RANGE[kind]
        return problem(f"{value} {phrase} {ctx.get(name)}", f"use a number {_bounds(field)}")
    if kind in _WHOLE:
        return problem(
            f"expected a whole number, got {value}",
            f"write a whole number such as {_example(field, '5')}",
        )
    if kind in _NUMBER:
        number = "a finite number" if kind == "finite_number" else "a number"
        return problem(
            f"expected {number}, got {value}",
            f"write a number such as {_example(field, '1.5')}",
        )
    if kind in {"bool_parsing", "bool_type"}:
        return problem(f"expected true or false, got {value}", "write true or false")
    if kind in {"literal_error", "enum"}:
        allowed_values = choices_of(field.annotation) if field is not None else []
        listing = f"use one of: {', '.join(allowed_values) or ctx.get('expected', '?')}"
        close = difflib.get_close_matches(str(error.get("input")), allowed_values, n=1)
        return problem(
            f"{value} is not an allowed value",
            f"did you mean {close[0]}? {listing}" if close and not secret else listing,
        )
    if kind in _SECTION:
        if error.get("input") is None:
            return problem("the section is empty", "give it keys or delete the line")
        return problem(
            f"expected a section of keys, got {value}",
            f"write its keys indented below `{loc[-1] if loc else 'it'}:`",
        )
    if kind in {"list_type", "list_parsing"}:
        return problem(f"expected a list, got {value}", "write a list such as [] or [a, b]")
    if kind in {"string_type", "string_unicode"}:
        return problem(f"expected text, got {value}", "write it as text (quote it)")
    if kind in _DATE:
        return problem(f"expected a date, got {value}", "write it as YYYY-MM-DD, e.g. 2025-03-03")
    if kind in {"path_type", "path_parsing"}:
        return problem(f"expected a path, got {value}", "write the path as text")
    if kind == "missing":
        return problem("is required", f"add it; {_describe(field)}")
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    return problem(f"{message[:1].lower()}{message[1:]}, got {value}", _describe(field))


def translate(
    exc: ValidationError, model: type[BaseModel], *, secret_fields: frozenset[str]
) -> list[ConfigProblem]:
    """Every error of `exc` as problems; inputs of secret fields are never shown."""
    problems: list[ConfigProblem] = []
    for error in exc.errors():
        problems.extend(_translate_one(dict(error), model, secret_fields))
    return problems
