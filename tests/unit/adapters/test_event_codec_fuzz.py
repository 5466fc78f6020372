"""Fuzzing the event codec: whatever arrives on the stream, decode returns or raises DecodeError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fin_agent.adapters.codec.event_codec import (
    Decoded,
    DecodeError,
    DecodeReason,
    EventCodec,
    default_registry,
)
from fin_agent.domain.events import BarsClosed, DomainEvent, ErrorRaised, PlanCreated, ScanCompleted
from fin_agent.domain.gap_scanner import Candidate, Rejection, RejectRule, ScanResult
from fin_agent.domain.trade_plan import EntryWindow, TradePlan
from fin_agent.domain.values import Bar, Side, symbol

D = Decimal
DAY = date(2024, 1, 2)
OPEN = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
CODEC = EventCodec(default_registry())
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def bar(minute: int, low: str, high: str) -> Bar:
    return Bar(
        symbol=symbol("AAA"),
        start=OPEN + timedelta(minutes=minute),
        open=D(low),
        high=D(high),
        low=D(low),
        close=D(high),
        volume=1_000 * (minute + 1),
    )


PLAN = TradePlan(
    id="gap_and_go-2024-01-02-AAA",
    trading_day=DAY,
    strategy="gap_and_go",
    symbol=symbol("AAA"),
    side=Side.LONG,
    rank=1,
    entry=D("10.86"),
    stop=D("10.48"),
    target=D("11.62"),
    qty=263,
    atr=D("0.75"),
    or_high=D("10.85"),
    or_low=D("10.48"),
    window=EntryWindow(opens_at=OPEN, closes_at=OPEN + timedelta(hours=1)),
)
SCAN = ScanResult(
    day=DAY,
    taken_at=OPEN - timedelta(minutes=15),
    candidates=(
        Candidate(
            symbol=symbol("AAA"),
            rank=1,
            side=Side.LONG,
            prev_close=D("10.00"),
            pm_last=D("10.85"),
            pm_volume=None,
            gap_pct=D("8.5"),
            atr=D("0.75"),
            adv=D("2350000"),
            history_bars=20,
            headline_count=1,
            top_headline=None,
            skipped_rules=(RejectRule.PM_VOLUME,),
        ),
    ),
    rejections=(Rejection(symbol=symbol("BBB"), rule=RejectRule.ADV, detail="thin"),),
)
EVENTS: tuple[DomainEvent, ...] = (
    BarsClosed(
        id="b-1",
        occurred_at=OPEN,
        trading_day=DAY,
        bars=(bar(0, "10.10", "10.20"), bar(1, "10.15", "10.30")),
    ),
    PlanCreated(id="p-1", occurred_at=OPEN, trading_day=DAY, plan=PLAN),
    ScanCompleted(id="s-1", occurred_at=OPEN, trading_day=DAY, result=SCAN),
    ErrorRaised(id="e-1", occurred_at=OPEN, trading_day=DAY, source="feed", code="x", message="m"),
)
VALID = tuple(
    CODEC.encode(e, trace="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") for e in EVENTS
)
KEYS = ("type", "v", "id", "ts", "trace", "data")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["10.5", "2024-01-02", "2024-01-02T14:30:00+00:00", "long", "AAA", "NaN"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
any_text = st.text(max_size=20) | st.binary(max_size=20)
keys = st.sampled_from(KEYS) | st.sampled_from([k.encode() for k in KEYS]) | any_text


def account(inputs: list[Any]) -> None:
    """Decode every input: each one is a Decoded or a DecodeError; anything else escapes and fails.

    The catch-all of decode is a safety net: no fuzzed input may need it ("unexpected ...").
    """
    outcomes: list[Decoded | DecodeError] = []
    for fields in inputs:
        try:
            outcomes.append(CODEC.decode(fields))
        except DecodeError as error:
            outcomes.append(error)
    ok = [o for o in outcomes if isinstance(o, Decoded)]
    errors = [o for o in outcomes if isinstance(o, DecodeError)]
    assert len(ok) + len(errors) == len(inputs)
    assert all(isinstance(d.event, DomainEvent) for d in ok)
    assert all(e.reason in set(DecodeReason) for e in errors)
    assert all(str(e).startswith("cannot decode ") for e in errors)
    assert not [str(e) for e in errors if "unexpected" in str(e)]
    for outcome in outcomes:
        event(f"outcome: {outcome.reason if isinstance(outcome, DecodeError) else 'ok'}")


@FUZZ
@given(
    st.lists(
        st.dictionaries(keys, any_text | st.integers() | st.none(), max_size=8)
        | st.none()
        | st.integers()
        | st.lists(any_text, max_size=3)
        | st.text(max_size=10),
        min_size=1,
        max_size=8,
    )
)
def test_decode_of_arbitrary_mappings_returns_or_raises_decode_error(inputs: list[object]) -> None:
    account(inputs)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(VALID), json_values), min_size=1, max_size=8))
def test_decode_of_arbitrary_json_data_returns_or_raises_decode_error(
    pairs: list[tuple[dict[str, str], object]],
) -> None:
    inputs = [fields | {"data": json.dumps(data)} for fields, data in pairs]

    account(inputs)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value: keys of objects and indexes of arrays."""
    yield prefix
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        yield from paths(child, (*prefix, key))


def replaced(data: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[head] = replaced(data[head], rest, new)
    return copy


def dropped(data: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        copy = dict(data) if isinstance(data, dict) else list(data)
        del copy[path[0]]
        return copy
    return replaced(data, path[:1], dropped(data[path[0]], path[1:]))


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid entry with one thing broken: a key, a value's type, the JSON, or a deep value."""
    fields: dict[Any, Any] = dict(draw(st.sampled_from(VALID)))
    kind = draw(st.sampled_from(["drop_key", "retype", "truncate", "deep_replace", "deep_drop"]))
    key = draw(st.sampled_from(KEYS))
    if kind == "drop_key":
        del fields[key]
    elif kind == "retype":
        fields[key] = draw(st.integers() | st.none() | st.binary(max_size=6) | st.text(max_size=6))
    elif kind == "truncate":
        fields["data"] = fields["data"][: draw(st.integers(0, len(fields["data"]) - 1))]
    else:
        data = json.loads(fields["data"])
        path = draw(st.sampled_from(list(paths(data))[1:]))
        if kind == "deep_replace":
            data = replaced(data, path, draw(json_values))
        else:
            data = dropped(data, path)
        fields["data"] = json.dumps(data)
    if draw(st.booleans()):
        fields = {
            (k.encode() if isinstance(k, str) else k): (v.encode() if isinstance(v, str) else v)
            for k, v in fields.items()
        }
    return fields


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=8))
def test_decode_of_mutated_valid_entries_returns_or_raises_decode_error(
    inputs: list[object],
) -> None:
    account(inputs)


prices = st.decimals(
    min_value=D("0.0001"), max_value=D("99999"), allow_nan=False, allow_infinity=False
)


@st.composite
def bars(draw: st.DrawFn) -> Bar:
    low, high = sorted(draw(st.lists(prices, min_size=2, max_size=2)))
    return Bar(
        symbol=symbol(draw(st.from_regex(r"[A-Z][A-Z0-9]{0,4}", fullmatch=True))),
        start=OPEN + timedelta(seconds=draw(st.integers(0, 23_400))),
        open=draw(st.sampled_from([low, high])),
        high=high,
        low=low,
        close=draw(st.sampled_from([low, high])),
        volume=draw(st.integers(0, 10**12)),
        interval_secs=draw(st.sampled_from([60, 300])),
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(bars(), max_size=5), st.text())
def test_generated_bars_and_any_text_round_trip_exactly(generated: list[Bar], text: str) -> None:
    events = [
        BarsClosed(id="b", occurred_at=OPEN, trading_day=DAY, bars=tuple(generated)),
        ErrorRaised(
            id=text or "e", occurred_at=OPEN, trading_day=DAY, source=text, code=text, message=text
        ),
    ]

    for sent in events:
        assert CODEC.decode(CODEC.encode(sent)).event == sent
