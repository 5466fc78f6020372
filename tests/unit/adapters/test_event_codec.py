"""The event codec: exact round trips of every event, upcasting, and a reason for every refusal."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import pytest

from fin_agent.adapters.codec.event_codec import (
    Decoded,
    DecodeError,
    DecodeReason,
    EventCodec,
    EventRegistry,
    default_registry,
)
from fin_agent.domain.errors import DataError
from fin_agent.domain.events import (
    EVENT_TYPES,
    BarsClosed,
    CommandKind,
    ConfigChanged,
    DayStarted,
    DomainEvent,
    ErrorRaised,
    NewsAttached,
    NewsPublished,
    OperatorCommand,
    OperatorCommandApplied,
    OperatorCommandRefused,
    OrderPlaced,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ReportDaily,
    RiskStateChanged,
    ScanCompleted,
    Severity,
    SignalGenerated,
    SnapshotTaken,
)
from fin_agent.domain.gap_scanner import (
    Candidate,
    Rejection,
    RejectRule,
    ScanResult,
    SymbolSnapshot,
    UniverseSnapshot,
)
from fin_agent.domain.news import NewsItem
from fin_agent.domain.orders import BracketOrder, ExitReason, Fill, FillKind
from fin_agent.domain.positions import ClosedTrade
from fin_agent.domain.report import DailyReport, performance
from fin_agent.domain.risk_engine import RiskReason, TradingState
from fin_agent.domain.trade_plan import EntryWindow, PlanState, TradePlan, plan_id
from fin_agent.domain.values import (
    Bar,
    DailyBar,
    Headline,
    Premarket,
    Side,
    Symbol,
    symbol,
)

D = Decimal
DAY = date(2024, 1, 2)
SCAN_AT = datetime(2024, 1, 2, 14, 15, tzinfo=UTC)  # 09:15 ET
OPEN = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # 09:30 ET
AAA, BBB, CCC = symbol("AAA"), symbol("BBB"), symbol("BRK.B")
PLAN_ID = plan_id(DAY, AAA, "gap_and_go")
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def candidate(name: Symbol, rank: int, gap: str, *, pm_volume: int | None = 850_000) -> Candidate:
    return Candidate(
        symbol=name,
        rank=rank,
        side=Side.LONG if not gap.startswith("-") else Side.SHORT,
        prev_close=D("10.00"),
        pm_last=D("10.00") * (1 + D(gap) / 100),
        pm_volume=pm_volume,
        gap_pct=D(gap),
        atr=D("0.7500"),
        adv=D("2350000.5"),
        history_bars=20,
        headline_count=2 if pm_volume else 0,
        top_headline="AAA beats estimates, raises guidance" if pm_volume else None,
        skipped_rules=() if pm_volume else (RejectRule.PM_VOLUME,),
    )


SNAPSHOT = UniverseSnapshot(
    day=DAY,
    taken_at=SCAN_AT,
    symbols=(
        SymbolSnapshot(
            symbol=AAA,
            daily_bars=(
                DailyBar(
                    symbol=AAA,
                    session=DAY - timedelta(days=1),
                    open=D("9.80"),
                    high=D("10.20"),
                    low=D("9.70"),
                    close=D("10.00"),
                    volume=1_250_000,
                ),
            ),
            premarket=Premarket(symbol=AAA, last=D("10.90"), volume=180_000, as_of=SCAN_AT),
            headlines=(
                Headline(
                    symbol=AAA,
                    title="AAA beats estimates",
                    source="wire",
                    published_at=SCAN_AT - timedelta(hours=2),
                    url="https://example.com/aaa",
                ),
            ),
        ),
        SymbolSnapshot(symbol=symbol("BBB"), daily_bars=(), premarket=None),
    ),
)
SCAN = ScanResult(
    day=DAY,
    taken_at=SCAN_AT,
    candidates=(
        candidate(AAA, 1, "8.50"),
        candidate(BBB, 2, "-6.25"),
        candidate(CCC, 3, "5.0", pm_volume=None),
    ),
    rejections=(
        Rejection(
            symbol=symbol("DDD"), rule=RejectRule.GAP_BAND, detail="gap 1.2% < 4%", gap_pct=D("1.2")
        ),
        Rejection(symbol=symbol("EEE"), rule=RejectRule.NO_DATA, detail="no daily bars"),
    ),
)
PLAN = TradePlan(
    id=PLAN_ID,
    trading_day=DAY,
    strategy="gap_and_go",
    symbol=AAA,
    side=Side.LONG,
    rank=1,
    entry=D("10.86"),
    stop=D("10.48"),
    target=D("11.62"),
    qty=263,
    atr=D("0.7500"),
    or_high=D("10.85"),
    or_low=D("10.48"),
    window=EntryWindow(opens_at=OPEN + timedelta(minutes=5), closes_at=OPEN + timedelta(hours=1)),
)
ORDER = BracketOrder(
    client_order_id=PLAN_ID,
    symbol=AAA,
    side=Side.LONG,
    qty=263,
    trigger=D("10.86"),
    stop=D("10.48"),
    target=D("11.62"),
    placed_at=OPEN + timedelta(minutes=7),
)
FILL = Fill(
    client_order_id=PLAN_ID,
    symbol=AAA,
    side=Side.LONG,
    kind=FillKind.ENTRY,
    qty=263,
    price=D("10.87"),
    commission=D("1.32"),
    at=OPEN + timedelta(minutes=7, seconds=3),
)


def trade(plan: str, name: Symbol, exit_price: str, net: str, r: str, minutes: int) -> ClosedTrade:
    return ClosedTrade(
        plan_id=plan,
        symbol=name,
        side=Side.LONG,
        qty=263,
        entry_price=D("10.87"),
        exit_price=D(exit_price),
        entry_at=OPEN + timedelta(minutes=7),
        exit_at=OPEN + timedelta(minutes=minutes),
        exit_reason=ExitReason.TARGET if D(net) > 0 else ExitReason.STOP,
        gross_pnl=(D(exit_price) - D("10.87")) * 263,
        commission=D("2.64"),
        net_pnl=D(net),
        r_multiple=D(r),
    )


WIN = trade(PLAN_ID, AAA, "11.62", "194.61", "1.9471", 48)
LOSS = trade(plan_id(DAY, BBB, "gap_and_go"), BBB, "10.48", "-105.21", "-1.0527", 21)


def bar(name: Symbol, minute: int, close: str) -> Bar:
    price = D(close)
    return Bar(
        symbol=name,
        start=OPEN + timedelta(minutes=minute),
        open=price - D("0.03"),
        high=price + D("0.05"),
        low=price - D("0.06"),
        close=price,
        volume=12_400 + 37 * minute,
    )


BARS = tuple(bar(AAA if i % 2 else BBB, i // 2, f"{10 + i / 100:.2f}") for i in range(20))


def at(minutes: int) -> datetime:
    return OPEN + timedelta(minutes=minutes)


SAMPLES: dict[type[DomainEvent], DomainEvent] = {
    BarsClosed: BarsClosed(
        id=BarsClosed.id_for(at(10).isoformat()), occurred_at=at(10), trading_day=DAY, bars=BARS
    ),
    DayStarted: DayStarted(
        id=DayStarted.id_for(DAY.isoformat()),
        occurred_at=SCAN_AT - timedelta(minutes=45),
        trading_day=DAY,
        start_equity=D("100000.00"),
        strategy="gap_and_go",
        session_open=OPEN,
        session_close=OPEN + timedelta(hours=6, minutes=30),
    ),
    OperatorCommand: OperatorCommand(
        id=OperatorCommand.id_for("cmd-1"),
        occurred_at=at(12),
        trading_day=DAY,
        command_id="cmd-1",
        kind=CommandKind.HALT,
        reason="news pending",
        source="cli",
        issued_by="ops@desk",
    ),
    OperatorCommandApplied: OperatorCommandApplied(
        id=OperatorCommandApplied.id_for("cmd-1"),
        occurred_at=at(13),
        trading_day=DAY,
        command_id="cmd-1",
        kind=CommandKind.HALT,
        detail="trading halted: no new entries",
    ),
    OperatorCommandRefused: OperatorCommandRefused(
        id=OperatorCommandRefused.id_for("cmd-2"),
        occurred_at=at(13),
        trading_day=DAY,
        command_id="cmd-2",
        kind=CommandKind.RESUME,
        reason="trading is not halted (it is active)",
    ),
    ConfigChanged: ConfigChanged(
        id=ConfigChanged.id_for("90d5fcd64eea"),
        occurred_at=SCAN_AT,
        trading_day=DAY,
        version="90d5fcd64eea",
        previous_version="0123456789ab",
        applied_keys=("scan.gap_min_pct",),
        restart_keys=("bus.kind",),
    ),
    SnapshotTaken: SnapshotTaken.of(DAY.isoformat(), at=SCAN_AT, day=DAY, snapshot=SNAPSHOT),
    ScanCompleted: ScanCompleted(
        id=ScanCompleted.id_for(DAY.isoformat()), occurred_at=SCAN_AT, trading_day=DAY, result=SCAN
    ),
    SignalGenerated: SignalGenerated(
        id=SignalGenerated.id_for(PLAN_ID),
        occurred_at=SCAN_AT,
        trading_day=DAY,
        candidate=SCAN.candidates[2],
    ),
    PlanCreated: PlanCreated(
        id=PlanCreated.id_for(PLAN_ID), occurred_at=at(5), trading_day=DAY, plan=PLAN
    ),
    PlanRejected: PlanRejected(
        id=PlanRejected.id_for("gap_and_go-2024-01-02-BRK.B"),
        occurred_at=at(5),
        trading_day=DAY,
        plan_id="gap_and_go-2024-01-02-BRK.B",
        symbol=CCC,
        reason="zero_size",
        detail="risk of $500.00 buys 0 shares at a $612.40 stop distance",
    ),
    OrderPlaced: OrderPlaced(
        id=OrderPlaced.id_for(PLAN_ID), occurred_at=at(7), trading_day=DAY, order=ORDER
    ),
    PlanExecuted: PlanExecuted(
        id=PlanExecuted.id_for(PLAN_ID),
        occurred_at=at(7),
        trading_day=DAY,
        plan_id=PLAN_ID,
        fill=FILL,
    ),
    PlanExpired: PlanExpired(
        id=PlanExpired.id_for(LOSS.plan_id),
        occurred_at=at(60),
        trading_day=DAY,
        plan_id=LOSS.plan_id,
        symbol=BBB,
    ),
    PositionClosed: PositionClosed(
        id=PositionClosed.id_for(PLAN_ID),
        occurred_at=at(48),
        trading_day=DAY,
        trade=WIN,
        fill=replace(FILL, kind=FillKind.TARGET, price=WIN.exit_price, at=WIN.exit_at),
    ),
    RiskStateChanged: RiskStateChanged(
        id=RiskStateChanged.id_for("2024-01-02|reducing"),
        occurred_at=at(95),
        trading_day=DAY,
        previous=TradingState.ACTIVE,
        current=TradingState.REDUCING,
        reason=RiskReason.DAILY_LOSS_LIMIT,
        detail="daily loss 2.1% reached the 2% limit: managing open positions only",
    ),
    ErrorRaised: ErrorRaised(
        id=ErrorRaised.id_for("feed|2024-01-02T15:02"),
        occurred_at=at(32),
        trading_day=DAY,
        source="feed.finnhub",
        code="feed_stalled",
        message="no trade for 30 s on 12 symbols — «reconnecting» ✓",
        severity=Severity.CRITICAL,
    ),
    ReportDaily: ReportDaily(
        id=ReportDaily.id_for(DAY.isoformat()),
        occurred_at=at(395),
        trading_day=DAY,
        report=DailyReport(
            day=DAY,
            strategy="gap_and_go",
            candidates=3,
            plans=2,
            plans_rejected=1,
            performance=performance(D("100000.00"), [WIN, LOSS]),
        ),
    ),
    NewsPublished: NewsPublished(
        id=NewsPublished.id_for("finnhub:42"),
        occurred_at=at(8),
        trading_day=DAY,
        item=NewsItem(
            news_id="finnhub:42",
            symbols=(symbol("AAPL"),),
            title="Apple wins a contract",
            source="Reuters",
            published_at=at(8) - timedelta(seconds=3),
            url="https://news.example.com/a",
        ),
    ),
    NewsAttached: NewsAttached(
        id=NewsAttached.id_for(f"{DAY}:AAPL:finnhub:42"),
        occurred_at=at(10),
        trading_day=DAY,
        symbol=symbol("AAPL"),
        plan_id=plan_id(DAY, symbol("AAPL"), "gap_and_go"),
        news_id="finnhub:42",
        title="Apple prices an offering",
        source="Reuters",
        published_at=at(10),
        url="",
        at_scan=False,
        keywords=("offering",),
        cancelled=True,
    ),
}


E = TypeVar("E", bound=DomainEvent)


def sample(cls: type[E]) -> E:
    """The sample of `cls`, typed as `cls`."""
    event = SAMPLES[cls]
    assert isinstance(event, cls)
    return event


@pytest.fixture
def codec() -> EventCodec:
    return EventCodec(default_registry())


def exactly(message: str) -> str:
    """A pattern matching `message` and nothing else."""
    return f"^{re.escape(message)}$"


def as_bytes(fields: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in fields.items()}


def test_samples_cover_every_event_type() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES)
    assert all(type(event) is cls for cls, event in SAMPLES.items())


@pytest.mark.parametrize("event", SAMPLES.values(), ids=lambda e: e.TYPE)
def test_codec_round_trips_every_event_type_exactly(codec: EventCodec, event: DomainEvent) -> None:
    fields = codec.encode(event, trace=TRACE)

    decoded = codec.decode(fields)

    assert decoded == Decoded(event=event, trace=TRACE)
    assert all(type(k) is str and type(v) is str for k, v in fields.items())


@pytest.mark.parametrize("event", SAMPLES.values(), ids=lambda e: e.TYPE)
def test_codec_decodes_bytes_keys_and_values_as_redis_py_returns_them(
    codec: EventCodec, event: DomainEvent
) -> None:
    assert codec.decode(as_bytes(codec.encode(event))).event == event


def test_codec_writes_the_flat_envelope_with_compact_json_data(codec: EventCodec) -> None:
    event = SAMPLES[PlanExpired]

    fields = codec.encode(event)

    assert fields == {
        "type": "plan.expired",
        "v": "1",
        "id": event.id,
        "ts": "2024-01-02T15:30:00+00:00",
        "trace": "",
        "data": '{"trading_day":"2024-01-02","plan_id":"gap_and_go-2024-01-02-BBB","symbol":"BBB"}',
    }


def test_codec_keeps_decimals_exact_as_strings(codec: EventCodec) -> None:
    plan = replace(PLAN, entry=D("2.0"), stop=D("1.9500"), target=D("1.2E+2"), atr=D("-0"))
    event = replace(sample(PlanCreated), plan=plan)

    fields = codec.encode(event)
    decoded = codec.decode(fields).event

    data = json.loads(fields["data"])["plan"]
    assert (data["entry"], data["stop"], data["target"], data["atr"]) == (
        "2.0",
        "1.9500",
        "1.2E+2",
        "-0",
    )
    assert isinstance(decoded, PlanCreated)
    assert str(decoded.plan.entry) == "2.0"
    assert str(decoded.plan.stop) == "1.9500"
    assert decoded == event


def test_codec_round_trips_optional_fields_when_set(codec: EventCodec) -> None:
    closed = (
        PLAN.trigger(at(7)).fill(D("10.87"), at(7)).close(D("11.62"), ExitReason.TARGET, at(48))
    )
    event = replace(sample(PlanCreated), plan=closed)

    decoded = codec.decode(codec.encode(event)).event

    assert decoded == event
    assert isinstance(decoded, PlanCreated)
    assert decoded.plan.state is PlanState.CLOSED
    assert decoded.plan.exit_reason is ExitReason.TARGET


def test_codec_converts_a_non_utc_offset_to_utc(codec: EventCodec) -> None:
    fields = codec.encode(SAMPLES[PlanExpired]) | {"ts": "2024-01-02T10:30:00-05:00"}

    decoded = codec.decode(fields).event

    assert decoded.occurred_at == at(60)
    assert decoded.occurred_at.tzinfo is UTC


def test_codec_ignores_fields_beyond_the_envelope_and_reads_a_missing_trace_as_empty(
    codec: EventCodec,
) -> None:
    fields = codec.encode(SAMPLES[PlanExpired], trace=TRACE)
    del fields["trace"]

    decoded = codec.decode({**as_bytes(fields), b"attempt": b"\xff\xfe"})

    assert decoded == Decoded(event=SAMPLES[PlanExpired], trace="")


@pytest.mark.parametrize(
    "trace",
    [
        "not-a-trace",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ],
)
def test_codec_drops_an_invalid_traceparent_on_decode_as_w3c_says(
    codec: EventCodec, trace: str
) -> None:
    fields = codec.encode(SAMPLES[PlanExpired]) | {"trace": trace}

    assert codec.decode(fields).trace == ""


def test_codec_refuses_to_encode_an_invalid_traceparent(codec: EventCodec) -> None:
    with pytest.raises(
        ValueError, match=exactly("trace 'abc' is not a W3C traceparent: pass one or ''")
    ):
        codec.encode(SAMPLES[PlanExpired], trace="abc")


def test_codec_refuses_to_encode_an_unregistered_event() -> None:
    codec = EventCodec(EventRegistry())

    with pytest.raises(
        ValueError, match=exactly("PlanExpired is not registered: add it to the EventRegistry")
    ):
        codec.encode(SAMPLES[PlanExpired])


def test_codec_refuses_to_encode_a_naive_datetime(codec: EventCodec) -> None:
    naive = replace(WIN, exit_at=datetime(2024, 1, 2, 15, 18))  # noqa: DTZ001 - the point of the test
    event = replace(sample(PositionClosed), trade=naive)

    with pytest.raises(
        ValueError,
        match=exactly(
            "cannot encode naive datetime datetime.datetime(2024, 1, 2, 15, 18): "
            "events carry aware UTC times"
        ),
    ):
        codec.encode(event)


# --- refusals: each reason with its exact message -------------------------------------------------


def entry(event_type: type[DomainEvent] = PlanExpired, **changes: str) -> dict[str, str]:
    fields = EventCodec(default_registry()).encode(SAMPLES[event_type])
    return fields | changes


Edit = Callable[[Any], None]
"""An in-place change to an entry's decoded JSON data."""


def with_data(event_type: type[DomainEvent], edit: Edit) -> dict[str, str]:
    fields = entry(event_type)
    data = json.loads(fields["data"])
    edit(data)
    return fields | {"data": json.dumps(data)}


def set_at(path: tuple[str | int, ...], value: Any) -> Edit:
    def edit(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value

    return edit


def delete_at(path: tuple[str | int, ...]) -> Edit:
    def edit(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        del data[path[-1]]

    return edit


def without(key: str) -> dict[str, str]:
    fields = entry()
    del fields[key]
    return fields


REFUSALS: list[tuple[str, Any, DecodeReason, str]] = [
    (
        "not a mapping",
        [("type", "plan.expired")],
        DecodeReason.GARBAGE,
        "cannot decode stream entry: expected a mapping of envelope fields, got list",
    ),
    (
        "missing envelope field",
        without("data"),
        DecodeReason.GARBAGE,
        "cannot decode plan.expired: missing envelope field 'data'",
    ),
    (
        "empty mapping",
        {},
        DecodeReason.GARBAGE,
        "cannot decode stream entry: missing envelope fields 'type', 'v', 'id', 'ts', 'data'",
    ),
    (
        "undecodable bytes",
        {**as_bytes(entry()), b"data": b'{"trading_day":"\xff"}'},
        DecodeReason.GARBAGE,
        "cannot decode stream entry: envelope field 'data' is not UTF-8 text",
    ),
    (
        "value neither str nor bytes",
        entry() | {"v": 1},
        DecodeReason.GARBAGE,
        "cannot decode stream entry: envelope field 'v' must be str or bytes, got int",
    ),
    (
        "version not an integer",
        entry(v="1.0"),
        DecodeReason.GARBAGE,
        "cannot decode plan.expired: v: expected a decimal integer version, got string '1.0'",
    ),
    (
        "bad json",
        entry(data='{"trading_day": "2024-01-02", '),
        DecodeReason.GARBAGE,
        "cannot decode plan.expired v1: data: not valid JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 31 (char 30))",
    ),
    (
        "data not an object",
        entry(data='["2024-01-02", "BBB"]'),
        DecodeReason.GARBAGE,
        "cannot decode plan.expired v1: data: expected a JSON object, got array of 2 items",
    ),
    (
        "unknown type",
        entry(type="plan.exploded"),
        DecodeReason.UNKNOWN_TYPE,
        "cannot decode plan.exploded v1: type: unknown event type; "
        "register its class in the EventRegistry",
    ),
    (
        "version newer than known",
        entry(v="2"),
        DecodeReason.UNKNOWN_VERSION,
        "cannot decode plan.expired v2: v: version 2 is newer than the known v1; "
        "deploy a consumer that knows it",
    ),
    (
        "version zero",
        entry(v="0"),
        DecodeReason.UNKNOWN_VERSION,
        "cannot decode plan.expired v0: v: versions start at 1",
    ),
    (
        "missing top-level field",
        with_data(PlanExpired, delete_at(("symbol",))),
        DecodeReason.MISSING_FIELD,
        "cannot decode plan.expired v1: data.symbol: required field is missing",
    ),
    (
        "missing nested field",
        with_data(PlanCreated, delete_at(("plan", "window", "opens_at"))),
        DecodeReason.MISSING_FIELD,
        "cannot decode plan.created v2: data.plan.window.opens_at: required field is missing",
    ),
    (
        "bad decimal in a nested tuple",
        with_data(ScanCompleted, set_at(("result", "candidates", 2, "gap_pct"), "5.0%")),
        DecodeReason.BAD_VALUE,
        "cannot decode scan.completed v2: data.result.candidates[2].gap_pct: "
        "expected a decimal string, got string '5.0%'",
    ),
    (
        "snapshot columns of different lengths",
        with_data(SnapshotTaken, set_at(("snapshot", "open"), [])),
        DecodeReason.BAD_VALUE,
        "cannot decode scan.snapshot_taken v4: data.snapshot: daily bar columns: "
        "1 value(s) each expected, one per bar",
    ),
    (
        "bad decimal in a snapshot column",
        with_data(SnapshotTaken, set_at(("snapshot", "close", 0), "9.9.8")),
        DecodeReason.BAD_VALUE,
        "cannot decode scan.snapshot_taken v4: data.snapshot: "
        "expected a decimal string, got string '9.9.8'",
    ),
    (
        "decimal as a json number",
        with_data(DayStarted, set_at(("start_equity",), 100000.0)),
        DecodeReason.BAD_VALUE,
        "cannot decode day.started v1: data.start_equity: "
        "expected a decimal string, got number 100000.0",
    ),
    (
        "not a finite decimal",
        with_data(PlanCreated, set_at(("plan", "atr"), "NaN")),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.created v2: data.plan.atr: expected a finite decimal, got string 'NaN'",
    ),
    (
        "naive ts",
        entry(ts="2024-01-02T15:30:00"),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.expired v1: ts: expected an ISO 8601 datetime with a UTC offset, "
        "got naive string '2024-01-02T15:30:00'",
    ),
    (
        "naive nested datetime",
        with_data(BarsClosed, set_at(("bars", 3, "start"), "2024-01-02T14:31:00")),
        DecodeReason.BAD_VALUE,
        "cannot decode market.bars_closed v1: data.bars[3].start: expected an ISO 8601 datetime "
        "with a UTC offset, got naive string '2024-01-02T14:31:00'",
    ),
    (
        "not a date",
        with_data(PlanExpired, set_at(("trading_day",), "2024-13-02")),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.expired v1: data.trading_day: expected an ISO 8601 date, "
        "got string '2024-13-02'",
    ),
    (
        "invalid enum",
        with_data(RiskStateChanged, set_at(("current",), "paused")),
        DecodeReason.BAD_VALUE,
        "cannot decode risk.state_changed v1: data.current: expected one of active, reducing, "
        "halted, got string 'paused'",
    ),
    (
        "bool where an int goes",
        with_data(PlanCreated, set_at(("plan", "qty"), True)),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.created v2: data.plan.qty: expected an integer, got true",
    ),
    (
        "null where a string goes",
        with_data(PlanExpired, set_at(("plan_id",), None)),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.expired v1: data.plan_id: expected a string, got null",
    ),
    (
        "object where an array goes",
        with_data(BarsClosed, set_at(("bars",), {})),
        DecodeReason.BAD_VALUE,
        "cannot decode market.bars_closed v1: data.bars: expected an array, got object",
    ),
    (
        "array where an object goes",
        with_data(PlanCreated, set_at(("plan", "window"), [])),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.created v2: data.plan.window: expected an object, got array of 0 items",
    ),
    (
        "unknown fields",
        with_data(PlanCreated, set_at(("plan", "venue"), "NASDAQ")),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.created v2: data.plan: unknown field 'venue'",
    ),
    (
        "envelope fields inside data",
        with_data(PlanExpired, set_at(("id",), "x")),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.expired v1: data: unknown field 'id'",
    ),
    (
        "domain validation",
        with_data(BarsClosed, set_at(("bars", 1, "low"), "99.00")),
        DecodeReason.BAD_VALUE,
        "cannot decode market.bars_closed v1: data.bars[1]: invalid Bar: bar AAA "
        "2024-01-02T14:30:00+00:00: inconsistent OHLC (o=9.98 h=10.06 l=99.00 c=10.01); "
        "high must be the highest price and low the lowest",
    ),
    (
        "empty id",
        entry(id=""),
        DecodeReason.BAD_VALUE,
        "cannot decode plan.expired v1: id: must not be empty",
    ),
]


def test_refusals_cover_every_decode_reason() -> None:
    assert {reason for _, _, reason, _ in REFUSALS} == set(DecodeReason)


@pytest.mark.parametrize(
    ("fields", "reason", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_codec_refuses_a_bad_entry_with_its_reason_and_exact_message(
    codec: EventCodec,
    fields: Any,  # deliberately malformed entries: not always a mapping of str or bytes
    reason: DecodeReason,
    message: str,
) -> None:
    with pytest.raises(DecodeError, match=exactly(message)) as caught:
        codec.decode(fields)

    assert caught.value.reason is reason
    assert isinstance(caught.value, DataError)


def test_decode_error_carries_type_version_and_path(codec: EventCodec) -> None:
    fields = with_data(ScanCompleted, set_at(("result", "candidates", 2, "gap_pct"), "x"))

    with pytest.raises(DecodeError) as caught:
        codec.decode(fields)

    error = caught.value
    assert (error.event_type, error.version, error.path) == (
        "scan.completed",
        ScanCompleted.VERSION,
        "data.result.candidates[2].gap_pct",
    )


def test_codec_wraps_an_unexpected_error_of_a_strange_mapping_as_garbage(codec: EventCodec) -> None:
    class Exploding(dict[str, str]):
        def items(self) -> Any:
            raise RuntimeError("boom")

    with pytest.raises(
        DecodeError,
        match=exactly("cannot decode stream entry: unexpected RuntimeError while decoding"),
    ) as caught:
        codec.decode(Exploding())

    assert caught.value.reason is DecodeReason.GARBAGE


# --- versions and upcasters ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteAddedV1(DomainEvent):
    """Version 1 of a test event: a free-text note on a plan."""

    TYPE: ClassVar[str] = "plan.note_added"
    plan_id: str
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteAddedV2(DomainEvent):
    """Version 2: the note was renamed `text`."""

    TYPE: ClassVar[str] = "plan.note_added"
    VERSION: ClassVar[int] = 2
    plan_id: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteAddedV3(DomainEvent):
    """Version 3: the note gained a severity."""

    TYPE: ClassVar[str] = "plan.note_added"
    VERSION: ClassVar[int] = 3
    plan_id: str
    text: str
    severity: Severity


def rename_note(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: `note` became `text`."""
    data = dict(data)
    data["text"] = data.pop("note")
    return data


def add_severity(data: dict[str, Any]) -> dict[str, Any]:
    """v2 -> v3: notes before v3 were warnings."""
    return {**data, "severity": Severity.WARNING.value}


def v1_entry() -> dict[str, str]:
    v1 = NoteAddedV1(
        id="n-1", occurred_at=at(9), trading_day=DAY, plan_id=PLAN_ID, note="wide spread"
    )
    registry = EventRegistry()
    registry.register(NoteAddedV1)
    return EventCodec(registry).encode(v1)


def codec_for(cls: type[DomainEvent], *upcasters: Any) -> EventCodec:
    registry = EventRegistry()
    registry.register(cls)
    for step, fn in enumerate(upcasters, start=1):
        registry.upcaster(cls.TYPE, step)(fn)
    return EventCodec(registry)


def test_codec_upcasts_a_v1_entry_to_the_v2_class() -> None:
    decoded = codec_for(NoteAddedV2, rename_note).decode(v1_entry())

    assert decoded.event == NoteAddedV2(
        id="n-1", occurred_at=at(9), trading_day=DAY, plan_id=PLAN_ID, text="wide spread"
    )


def test_codec_runs_the_upcaster_chain_from_v1_through_v2_to_v3() -> None:
    codec = codec_for(NoteAddedV3, rename_note, add_severity)

    decoded = codec.decode(v1_entry())
    v2_fields = v1_entry() | {
        "v": "2",
        "data": json.dumps(rename_note(json.loads(v1_entry()["data"]))),
    }

    expected = NoteAddedV3(
        id="n-1",
        occurred_at=at(9),
        trading_day=DAY,
        plan_id=PLAN_ID,
        text="wide spread",
        severity=Severity.WARNING,
    )
    assert decoded.event == expected
    assert codec.decode(v2_fields).event == expected
    assert codec.decode(codec.encode(expected)).event == expected


def test_upcaster_registered_with_the_decorator_is_returned_unchanged() -> None:
    registry = EventRegistry()

    decorated = registry.upcaster("plan.note_added", 1)(rename_note)

    assert decorated is rename_note
    assert registry.upcaster_from("plan.note_added", 1) is rename_note


def test_codec_refuses_an_old_version_without_an_upcaster_chain() -> None:
    codec = codec_for(NoteAddedV3, rename_note)  # no v2 -> v3

    with pytest.raises(
        DecodeError,
        match=exactly(
            "cannot decode plan.note_added v1: v: no upcaster from v2 to v3; "
            "register one with EventRegistry.upcaster('plan.note_added', 2)"
        ),
    ) as caught:
        codec.decode(v1_entry())

    assert caught.value.reason is DecodeReason.UNKNOWN_VERSION


def test_codec_refuses_a_version_newer_than_the_known_one() -> None:
    v3 = codec_for(NoteAddedV3, rename_note, add_severity).encode(
        NoteAddedV3(
            id="n-2",
            occurred_at=at(9),
            trading_day=DAY,
            plan_id=PLAN_ID,
            text="t",
            severity=Severity.ERROR,
        )
    )

    with pytest.raises(
        DecodeError,
        match=exactly(
            "cannot decode plan.note_added v3: v: version 3 is newer than the known v2; "
            "deploy a consumer that knows it"
        ),
    ) as caught:
        codec_for(NoteAddedV2, rename_note).decode(v3)

    assert caught.value.reason is DecodeReason.UNKNOWN_VERSION


def test_codec_reports_a_field_an_upcaster_needs_but_the_entry_lacks_as_missing() -> None:
    fields = v1_entry()
    fields["data"] = json.dumps(
        {k: v for k, v in json.loads(fields["data"]).items() if k != "note"}
    )

    with pytest.raises(
        DecodeError,
        match=exactly(
            "cannot decode plan.note_added v1: data.note: required field is missing "
            "(upcaster from v1 to v2 needs it)"
        ),
    ) as caught:
        codec_for(NoteAddedV2, rename_note).decode(fields)

    assert caught.value.reason is DecodeReason.MISSING_FIELD


def test_codec_reports_a_failing_upcaster_as_a_bad_value() -> None:
    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise AttributeError("no")

    with pytest.raises(
        DecodeError,
        match=exactly(
            "cannot decode plan.note_added v1: data: upcaster from v1 to v2 failed: "
            "AttributeError: no"
        ),
    ) as caught:
        codec_for(NoteAddedV2, broken).decode(v1_entry())

    assert caught.value.reason is DecodeReason.BAD_VALUE


def test_codec_checks_the_upcast_data_against_the_current_class() -> None:
    def forgetful(data: dict[str, Any]) -> dict[str, Any]:
        return {"trading_day": data["trading_day"], "plan_id": data["plan_id"]}

    with pytest.raises(
        DecodeError,
        match=exactly("cannot decode plan.note_added v1: data.text: required field is missing"),
    ):
        codec_for(NoteAddedV2, forgetful).decode(v1_entry())


# --- the registry -------------------------------------------------------------------------------


def test_default_registry_knows_every_event_type() -> None:
    registry = default_registry()

    assert set(registry.classes) == set(EVENT_TYPES)
    assert all(registry.event_class(cls.TYPE) is cls for cls in EVENT_TYPES)
    assert registry.event_class("plan.exploded") is None


def test_registry_refuses_a_second_class_for_a_type() -> None:
    registry = EventRegistry()
    registry.register(NoteAddedV1)

    with pytest.raises(
        ValueError,
        match=exactly(
            "event type 'plan.note_added' is already registered to NoteAddedV1; bump VERSION on "
            "that class and register an upcaster instead of a second class"
        ),
    ):
        registry.register(NoteAddedV2)


def test_registry_refuses_a_second_upcaster_for_a_step() -> None:
    registry = EventRegistry()
    registry.upcaster("plan.note_added", 1)(rename_note)

    with pytest.raises(
        ValueError,
        match=exactly(
            "plan.note_added already has an upcaster from v1 to v2: each step has exactly one"
        ),
    ):
        registry.upcaster("plan.note_added", 1)(add_severity)


def test_registry_refuses_an_upcaster_from_version_zero() -> None:
    with pytest.raises(ValueError, match=exactly("versions start at 1, cannot upcast from v0")):
        EventRegistry().upcaster("plan.note_added", 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured(DomainEvent):
    """An event with a field type the wire cannot carry."""

    TYPE: ClassVar[str] = "test.measured"
    ratio: float


def test_codec_refuses_at_construction_a_class_with_an_unsupported_field_type() -> None:
    registry = EventRegistry()
    registry.register(Measured)

    with pytest.raises(
        TypeError,
        match=exactly(
            "the event codec cannot carry Measured.ratio: <class 'float'> is not a supported type"
        ),
    ):
        EventCodec(registry)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPlanned(DomainEvent):
    """A test event using the field types no domain event uses yet."""

    TYPE: ClassVar[str] = "test.session_planned"
    opens: time
    half_day: bool
    previous_day: date | None
    watch: tuple[Symbol, ...]
    limits: tuple[Decimal | None, ...]
    checkpoints: tuple[datetime, ...]


def session_codec() -> EventCodec:
    registry = EventRegistry()
    registry.register(SessionPlanned)
    return EventCodec(registry)


SESSION = SessionPlanned(
    id="s-1",
    occurred_at=at(-60),
    trading_day=DAY,
    opens=time(9, 30),
    half_day=False,
    previous_day=None,
    watch=(AAA, CCC),
    limits=(D("2.50"), None, D("0.0001")),
    checkpoints=(at(0), at(30)),
)


def test_codec_round_trips_times_bools_optional_dates_and_tuples_of_optionals() -> None:
    codec = session_codec()

    fields = codec.encode(SESSION)

    assert json.loads(fields["data"]) == {
        "trading_day": "2024-01-02",
        "opens": "09:30:00",
        "half_day": False,
        "previous_day": None,
        "watch": ["AAA", "BRK.B"],
        "limits": ["2.50", None, "0.0001"],
        "checkpoints": ["2024-01-02T14:30:00+00:00", "2024-01-02T15:00:00+00:00"],
    }
    assert codec.decode(fields).event == SESSION
    later = replace(SESSION, previous_day=date(2023, 12, 29), half_day=True)
    assert codec.decode(codec.encode(later)).event == later


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (set_at(("opens",), "9.30"), "data.opens: expected an ISO 8601 time, got string '9.30'"),
        (set_at(("half_day",), 0), "data.half_day: expected true or false, got number 0"),
        (set_at(("watch", 1), 7), "data.watch[1]: expected a string, got number 7"),
        (set_at(("limits", 2), 1), "data.limits[2]: expected a decimal string, got number 1"),
        (
            set_at(("checkpoints", 1), "x"),
            "data.checkpoints[1]: expected an ISO 8601 datetime, got string 'x'",
        ),
    ],
)
def test_codec_names_the_path_of_a_bad_value_of_every_kind(edit: Edit, message: str) -> None:
    codec = session_codec()
    data = json.loads(codec.encode(SESSION)["data"])
    edit(data)

    with pytest.raises(
        DecodeError, match=exactly("cannot decode test.session_planned v1: " + message)
    ):
        codec.decode(codec.encode(SESSION) | {"data": json.dumps(data)})
