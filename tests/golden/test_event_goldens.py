"""The pinned wire format: every event type's golden payloads, checked in both directions.

The representative event of a type encodes to exactly the golden of its current version, and that
golden decodes back to it; every golden of an older version (or of another shape a version was
stored in) still decodes, through the upcasters, to the representative event. The rule these keep
is in tests/golden/README.md: a field change is a new version, an upcaster and a new golden.
"""

from __future__ import annotations

import dataclasses

import pytest

from fin_agent.adapters.codec.event_codec import Decoded, EventCodec, default_registry
from fin_agent.domain.events import EVENT_TYPES, DomainEvent
from golden.files import Golden, digest, every_golden, golden_path, load, released, released_name
from golden.samples import SAMPLES, TRACE, UPCAST_FILLS, decoded_today

REGISTRY = default_registry()
CURRENT: dict[str, type[DomainEvent]] = {cls.TYPE: cls for cls in REGISTRY.classes}
GOLDENS = every_golden()
OLDER = [g for g in GOLDENS if (g.version, g.variant) != (CURRENT[g.event_type].VERSION, "")]
RULE = "see tests/golden/README.md"


@pytest.fixture(scope="module")
def codec() -> EventCodec:
    """The production codec, with the production registry and its upcasters."""
    return EventCodec(REGISTRY)


def current_golden(cls: type[DomainEvent]) -> Golden:
    """The golden of `cls` at its VERSION; fails, saying how to write it, when there is none."""
    path = golden_path(cls.TYPE, cls.VERSION)
    if not path.exists():
        pytest.fail(
            f"{cls.TYPE} v{cls.VERSION} has no golden payload {path}: add its sample to "
            "tests/golden/samples.py, run `PYTHONPATH=tests .venv/bin/python -m golden.write`, "
            f"review the file and commit it ({RULE})"
        )
    return load(path)


def test_the_registry_holds_every_domain_event_type() -> None:
    assert set(CURRENT.values()) == set(EVENT_TYPES)


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda cls: cls.TYPE)
def test_every_event_type_has_a_sample_and_a_golden_of_its_current_version(
    cls: type[DomainEvent],
) -> None:
    assert type(SAMPLES.get(cls.TYPE)) is cls, f"tests/golden/samples.py lacks a {cls.__name__}"
    assert current_golden(cls).version == cls.VERSION


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda cls: cls.TYPE)
def test_the_sample_encodes_to_exactly_its_current_golden(
    codec: EventCodec, cls: type[DomainEvent]
) -> None:
    golden = current_golden(cls)

    encoded = codec.encode(SAMPLES[cls.TYPE], trace=TRACE)

    assert encoded == golden.entry, (
        f"{cls.TYPE} v{cls.VERSION} no longer encodes to {golden.path}: its wire format changed. "
        f"Do not edit the golden: bump {cls.__name__}.VERSION, register an upcaster from "
        f"v{cls.VERSION} in adapters/codec/upcasters.py and write the new golden ({RULE})"
    )


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda cls: cls.TYPE)
def test_the_current_golden_decodes_to_the_sample(
    codec: EventCodec, cls: type[DomainEvent]
) -> None:
    golden = current_golden(cls)

    decoded = codec.decode(golden.entry)

    assert decoded == Decoded(event=SAMPLES[cls.TYPE], trace=TRACE)


@pytest.mark.parametrize("golden", OLDER, ids=lambda g: f"{g.event_type}/{g.name}")
def test_every_older_golden_still_decodes_through_the_upcasters(
    codec: EventCodec, golden: Golden
) -> None:
    fills = UPCAST_FILLS.get((golden.event_type, golden.name))
    assert fills is not None, (
        f"{golden.path}: say in UPCAST_FILLS (tests/golden/samples.py) which fields the "
        "upcasters fill in when it is decoded"
    )

    decoded = codec.decode(golden.entry)

    assert decoded == Decoded(event=decoded_today(golden.event_type, golden.name), trace=TRACE)


def test_the_decisions_v1_is_pinned_in_both_shapes_it_was_stored_in() -> None:
    decisions = ("scan.completed", "plan.created", "order.placed", "position.closed")
    shapes = {(g.event_type, g.name): g.data for g in OLDER if g.event_type in decisions}

    for event_type in decisions:
        assert "config_version" not in shapes[(event_type, "v1")], event_type
        assert shapes[(event_type, "v1-config_version")]["config_version"], event_type
        assert CURRENT[event_type].VERSION == 2, event_type


def test_every_released_version_of_every_type_has_a_golden() -> None:
    versions = {(g.event_type, g.version) for g in GOLDENS}

    missing = [
        f"{cls.TYPE} v{version}"
        for cls in EVENT_TYPES
        for version in range(1, cls.VERSION + 1)
        if (cls.TYPE, version) not in versions
    ]

    assert not missing, f"versions without a golden payload: {', '.join(missing)} ({RULE})"


def test_no_golden_is_of_an_unknown_type_or_a_future_version() -> None:
    strays = [
        str(g.path)
        for g in GOLDENS
        if g.event_type not in CURRENT or g.version > CURRENT[g.event_type].VERSION
    ]

    assert not strays


def test_released_goldens_are_never_edited_or_removed() -> None:
    manifest = released()
    present = {released_name(g.path): digest(g.path) for g in GOLDENS}

    removed = sorted(manifest.keys() - present.keys())
    edited = sorted(n for n in manifest.keys() & present.keys() if manifest[n] != present[n])
    unreleased = sorted(present.keys() - manifest.keys())

    assert not removed, f"released goldens were removed: {removed} ({RULE})"
    assert not edited, f"released goldens were edited: {edited}; make a new version ({RULE})"
    assert not unreleased, (
        f"goldens not in the manifest: {unreleased}; run "
        "`PYTHONPATH=tests .venv/bin/python -m golden.write` to release them"
    )


@pytest.mark.parametrize("event", SAMPLES.values(), ids=lambda e: e.TYPE)
def test_every_sample_sets_each_field_that_has_a_default(event: DomainEvent) -> None:
    at_default = [
        f.name
        for f in dataclasses.fields(event)
        if f.default is not dataclasses.MISSING and getattr(event, f.name) == f.default
    ]

    assert not at_default, f"a golden that leaves {at_default} at its default pins less"
