"""`EventRegistry`: which class decodes each event type, and the upcasters of its old versions.

A type maps to one class, the one of its current VERSION; an entry written at an older version is
brought up to date by a chain of upcasters, each a pure function from the `data` of version N to
the `data` of version N + 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from fin_agent.adapters.codec.upcasters import register_upcasters
from fin_agent.domain.events import EVENT_TYPES, DomainEvent

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the `data` object of version N of an event type into that of version N + 1."""

E = TypeVar("E", bound=type[DomainEvent])
U = TypeVar("U", bound=Upcaster)


class EventRegistry:
    """Maps (type, version) to an event class, and holds the upcasters from older versions."""

    def __init__(self) -> None:
        self._classes: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: E) -> E:
        """Make `cls` the class of its TYPE at its VERSION; usable as a class decorator."""
        if not (isinstance(cls, type) and issubclass(cls, DomainEvent)):
            raise TypeError(f"{cls!r} is not a DomainEvent subclass: only events can be registered")
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass to travel on the bus")
        if cls.TYPE == DomainEvent.TYPE or "." not in cls.TYPE:
            raise ValueError(f"{cls.__name__} needs a dotted TYPE such as 'plan.created'")
        if not isinstance(cls.VERSION, int) or isinstance(cls.VERSION, bool) or cls.VERSION < 1:
            raise ValueError(f"{cls.__name__}.VERSION must be an integer >= 1, got {cls.VERSION!r}")
        known = self._classes.get(cls.TYPE)
        if known is not None and known is not cls:
            raise ValueError(
                f"event type {cls.TYPE!r} is already registered to {known.__qualname__}; "
                "bump VERSION on that class and register an upcaster instead of a second class"
            )
        self._classes[cls.TYPE] = cls
        return cls

    def upcaster(self, event_type: str, from_version: int) -> Callable[[U], U]:
        """Decorator registering `fn(data) -> data` from `from_version` to `from_version + 1`."""
        if from_version < 1:
            raise ValueError(f"versions start at 1, cannot upcast from v{from_version}")

        def register(fn: U) -> U:
            key = (event_type, from_version)
            if key in self._upcasters:
                raise ValueError(
                    f"{event_type} already has an upcaster from v{from_version} to "
                    f"v{from_version + 1}: each step has exactly one"
                )
            self._upcasters[key] = fn
            return fn

        return register

    def event_class(self, event_type: str) -> type[DomainEvent] | None:
        """The class of `event_type` (at its current VERSION), or None when unknown."""
        return self._classes.get(event_type)

    def upcaster_from(self, event_type: str, version: int) -> Upcaster | None:
        """The upcaster from `version` to `version + 1` of `event_type`, or None."""
        return self._upcasters.get((event_type, version))

    @property
    def classes(self) -> tuple[type[DomainEvent], ...]:
        """Every registered class, in registration order."""
        return tuple(self._classes.values())


def default_registry() -> EventRegistry:
    """A registry of every event class of the domain (`EVENT_TYPES`) and their upcasters."""
    registry = EventRegistry()
    for cls in EVENT_TYPES:
        registry.register(cls)
    register_upcasters(registry)
    return registry
