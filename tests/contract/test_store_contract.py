"""The `Store` contract: one suite run against `InMemoryStore`, `DuckDBStore` and `TimescaleStore`.

Every test gets each store through the parametrized `store` fixture (tests/contract/conftest.py),
empty and migrated, and writes a real simulated trading day into it. Rows must come back exactly as
the in-memory reference computes them from the shared `Projector`: same columns in order, same
Python types (Decimal at six places, aware UTC datetimes, dates, str, int, None).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from fin_agent.adapters.codec.event_codec import EventCodec
from fin_agent.adapters.storage.candles import candles_of
from fin_agent.adapters.storage.rows import (
    SCHEMA_VERSION,
    SIX_PLACES,
    TABLES,
    VERSIONED,
    Kind,
    Projector,
)
from fin_agent.domain.errors import DataError
from fin_agent.domain.events import (
    BarsClosed,
    DomainEvent,
    ErrorRaised,
    OrderPlaced,
    PlanCreated,
    PositionClosed,
    ReportDaily,
    ScanCompleted,
)
from fin_agent.domain.values import Bar, Symbol
from fin_agent.ports.store import CANDLE_COLUMNS, CandleWidth, Row, Store

if TYPE_CHECKING:
    from contract.conftest import Durable, TradingDayEvents

pytestmark = pytest.mark.asyncio

Versioned = ScanCompleted | PlanCreated | OrderPlaced | PositionClosed
VERSIONED_BY: dict[str, type[Versioned]] = {
    "scan_candidates": ScanCompleted,
    "scan_rejections": ScanCompleted,
    "plans": PlanCreated,
    "orders": OrderPlaced,
    "trades": PositionClosed,
}
"""The tables with a `config_version` column and the event whose version their rows carry."""


async def counts(store: Store) -> dict[str, int]:
    """The number of rows in every table."""
    return {name: len(await store.rows(name)) for name in TABLES}


def expected_rows(codec: EventCodec, events: Sequence[DomainEvent]) -> dict[str, list[Row]]:
    """What every store must answer for `events`: projected, normalised, ordered, deduplicated."""
    out: dict[str, list[Row]] = {name: [] for name in TABLES}
    for name, rows in Projector(codec).rows(events).items():
        table = TABLES[name]
        by_key: dict[tuple[object, ...], dict[str, object]] = {}
        for raw in rows:
            row = {c.name: _normalised(v, c.kind) for c, v in zip(table.columns, raw, strict=True)}
            by_key.setdefault(tuple(row[k] for k in table.key), row)
        order = (table.time_column, *(k for k in table.key if k != table.time_column))
        out[name] = sorted(by_key.values(), key=lambda r: tuple(r[c] for c in order))
    return out


def _normalised(value: object, kind: Kind) -> object:
    if value is None:
        return None
    if kind is Kind.NUMERIC:
        assert isinstance(value, Decimal)
        return value.quantize(SIX_PLACES)
    if kind is Kind.TIMESTAMP:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    return value


def assert_same_row(got: Mapping[str, object], want: Mapping[str, object], table: str) -> None:
    """Equal values of the same Python type; numbers at six places; JSON equal as JSON."""
    assert list(got) == list(want), f"{table}: columns"
    kinds = {c.name: c.kind for c in TABLES[table].columns}
    for name, expected in want.items():
        value = got[name]
        where = f"{table}.{name}"
        if kinds[name] is Kind.JSON:
            assert isinstance(value, str), where
            assert json.loads(value) == json.loads(str(expected)), where
            continue
        assert type(value) is type(expected), f"{where}: {type(value)} is not {type(expected)}"
        assert value == expected, where
        if isinstance(value, Decimal):
            assert value.as_tuple().exponent == -6, f"{where}: {value} is not at six places"
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0), f"{where}: {value} is not UTC"


async def test_migrate_is_idempotent_and_reports_the_schema_version(
    fresh_store: Store, expected_backend: str
) -> None:
    first = await fresh_store.migrate()
    second = await fresh_store.migrate()

    assert first.backend == expected_backend
    assert first.schema_version == second.schema_version == SCHEMA_VERSION
    assert (first.backend, first.features) == (second.backend, second.features)
    assert await fresh_store.days() == []
    assert await counts(fresh_store) == dict.fromkeys(TABLES, 0)


async def test_write_counts_new_events_and_a_rewrite_adds_no_row_anywhere(
    store: Store, trading_day: TradingDayEvents, codec: EventCodec
) -> None:
    events = trading_day.events
    expected = {name: len(rows) for name, rows in expected_rows(codec, events).items()}

    new = await store.write(events)
    after_first = await counts(store)
    again = await store.write(events)

    assert new == len({e.id for e in events})
    assert after_first == expected
    assert all(after_first.values()), f"every table gets rows from a day: {after_first}"
    assert again == 0
    assert await counts(store) == after_first


async def test_rows_equal_the_projection_of_every_table(
    store: Store, trading_day: TradingDayEvents, codec: EventCodec
) -> None:
    await store.write(trading_day.everything)

    for name, want in expected_rows(codec, trading_day.everything).items():
        got = await store.rows(name)
        assert len(got) == len(want), name
        for got_row, want_row in zip(got, want, strict=True):
            assert tuple(got_row) == TABLES[name].names
            assert_same_row(got_row, want_row, name)


async def test_events_round_trip_in_time_then_id_order(
    store: Store, trading_day: TradingDayEvents
) -> None:
    await store.write(trading_day.everything)

    got = await store.events()

    assert list(got) == trading_day.in_store_order(trading_day.everything)


async def test_events_filter_by_day_types_and_limit(
    store: Store, trading_day: TradingDayEvents
) -> None:
    await store.write(trading_day.next_day_events)
    await store.write(trading_day.events)
    everything = trading_day.in_store_order(trading_day.everything)
    wanted = {PlanCreated.TYPE, PositionClosed.TYPE, ErrorRaised.TYPE}

    on_next_day = await store.events(day=trading_day.next_day)
    of_types = await store.events(types=wanted)
    first_five = await store.events(limit=5)
    combined = await store.events(day=trading_day.day, types=wanted, limit=3)

    assert list(on_next_day) == trading_day.in_store_order(trading_day.next_day_events)
    assert list(of_types) == [e for e in everything if e.TYPE in wanted]
    assert list(first_five) == everything[:5]
    assert (
        list(combined)
        == [e for e in everything if e.trading_day == trading_day.day and e.TYPE in wanted][:3]
    )
    assert await store.events(limit=0) == []
    assert await store.events(types=set()) == []
    assert await store.events(day=trading_day.next_day + timedelta(days=1)) == []


async def test_same_instant_events_order_by_id(store: Store, trading_day: TradingDayEvents) -> None:
    errors = [e for e in trading_day.next_day_events if isinstance(e, ErrorRaised)]
    assert errors[0].occurred_at == errors[1].occurred_at

    await store.write(list(reversed(errors)))

    assert [e.id for e in await store.events()] == sorted(e.id for e in errors)


async def test_rows_filter_by_day_and_limit(
    store: Store, trading_day: TradingDayEvents, codec: EventCodec
) -> None:
    await store.write(trading_day.everything)
    errors = expected_rows(codec, trading_day.everything)["errors"]
    bars = expected_rows(codec, trading_day.events)["bars_1m"]

    next_day_errors = await store.rows("errors", day=trading_day.next_day)
    first_bars = await store.rows("bars_1m", limit=10)

    assert [r["event_id"] for r in next_day_errors] == [
        r["event_id"] for r in errors if r["trading_day"] == trading_day.next_day
    ]
    assert len(next_day_errors) == 2
    assert [(r["symbol"], r["start"]) for r in first_bars] == [
        (r["symbol"], r["start"]) for r in bars[:10]
    ]
    assert await store.rows("plans", day=trading_day.next_day) == []
    assert await store.rows("plans", limit=0) == []


async def test_rows_carry_the_figures_of_the_domain_objects(
    store: Store, trading_day: TradingDayEvents
) -> None:
    await store.write(trading_day.events)
    [scan] = trading_day.of(ScanCompleted)
    candidate = scan.result.candidates[0]
    plan_event = trading_day.of(PlanCreated)[0]
    plan = plan_event.plan
    closed = trading_day.of(PositionClosed)[0]
    trade = closed.trade
    [report_event] = trading_day.of(ReportDaily)
    report, perf = report_event.report, report_event.report.performance

    [cand_row] = [r for r in await store.rows("scan_candidates") if r["symbol"] == candidate.symbol]
    [plan_row] = [r for r in await store.rows("plans") if r["plan_id"] == plan.id]
    [trade_row] = [r for r in await store.rows("trades") if r["event_id"] == closed.id]
    [exit_fill] = [r for r in await store.rows("fills") if r["event_id"] == closed.id]
    [report_row] = await store.rows("daily_reports")

    assert cand_row["event_id"] == scan.id
    assert cand_row["occurred_at"] == scan.occurred_at
    assert cand_row["trading_day"] == trading_day.day
    assert (cand_row["rank"], cand_row["side"]) == (candidate.rank, str(candidate.side))
    assert (cand_row["prev_close"], cand_row["pm_last"]) == (
        candidate.prev_close,
        candidate.pm_last,
    )
    assert cand_row["gap_pct"] == candidate.gap_pct.quantize(SIX_PLACES)
    assert cand_row["pm_volume"] == candidate.pm_volume
    assert cand_row["top_headline"] == candidate.top_headline
    assert (plan_row["entry"], plan_row["stop"], plan_row["target"]) == (
        plan.entry,
        plan.stop,
        plan.target,
    )
    assert (plan_row["qty"], plan_row["strategy"]) == (plan.qty, plan.strategy)
    assert (plan_row["entry_from"], plan_row["entry_until"]) == (
        plan.window.opens_at,
        plan.window.closes_at,
    )
    assert (trade_row["plan_id"], trade_row["qty"]) == (trade.plan_id, trade.qty)
    assert (trade_row["entry_price"], trade_row["exit_price"]) == (
        trade.entry_price,
        trade.exit_price,
    )
    assert (trade_row["entry_at"], trade_row["exit_at"]) == (trade.entry_at, trade.exit_at)
    assert trade_row["exit_reason"] == str(trade.exit_reason)
    assert trade_row["net_pnl"] == trade.net_pnl.quantize(SIX_PLACES)
    assert trade_row["r_multiple"] == trade.r_multiple.quantize(SIX_PLACES)
    assert (exit_fill["price"], exit_fill["qty"]) == (closed.fill.price, closed.fill.qty)
    assert (report_row["candidates"], report_row["plans"]) == (report.candidates, report.plans)
    assert report_row["trades"] == len(perf.trades)
    assert report_row["net_pnl"] == perf.net_pnl.quantize(SIX_PLACES)
    assert report_row["end_equity"] == perf.end_equity.quantize(SIX_PLACES)
    assert report_row["win_rate"] == perf.win_rate.quantize(SIX_PLACES)
    plan_states = [r["state"] for r in await store.rows("plan_states") if r["plan_id"] == plan.id]
    assert plan_states[0] == "planned"


async def test_days_lists_the_trading_days_oldest_first(
    store: Store, trading_day: TradingDayEvents
) -> None:
    await store.write(trading_day.next_day_events)
    await store.write(trading_day.events)

    assert list(await store.days()) == [trading_day.day, trading_day.next_day]


async def test_ping_answers_on_a_working_store(store: Store) -> None:
    await store.ping()


async def test_a_partially_overlapping_batch_adds_only_its_new_events(
    store: Store, trading_day: TradingDayEvents, codec: EventCodec
) -> None:
    events = trading_day.events
    half = len(events) // 2
    first, overlapping = events[:half], events[half - 20 :]

    await store.write(first)
    new = await store.write(overlapping)

    assert new == len({e.id for e in events[half:]})
    expected = {name: len(rows) for name, rows in expected_rows(codec, events).items()}
    assert await counts(store) == expected
    assert list(await store.events()) == trading_day.in_store_order(events)


async def test_concurrent_writes_of_one_batch_store_it_once(
    store: Store, trading_day: TradingDayEvents, codec: EventCodec
) -> None:
    events = trading_day.events

    news = await asyncio.gather(store.write(events), store.write(events))

    assert sorted(news) == [0, len({e.id for e in events})]
    expected = {name: len(rows) for name, rows in expected_rows(codec, events).items()}
    assert await counts(store) == expected


async def test_an_event_repeated_in_one_batch_is_stored_once(
    store: Store, trading_day: TradingDayEvents
) -> None:
    plan = trading_day.of(PlanCreated)[0]

    assert await store.write([plan, plan]) == 1
    assert list(await store.events()) == [plan]
    assert len(await store.rows("plans")) == 1


async def test_an_empty_batch_is_a_no_op(store: Store) -> None:
    assert await store.write([]) == 0
    assert await store.days() == []
    assert await counts(store) == dict.fromkeys(TABLES, 0)


async def test_a_price_with_more_than_six_decimals_is_stored_at_six(
    store: Store, trading_day: TradingDayEvents
) -> None:
    start = datetime(2025, 3, 12, 14, 30, tzinfo=UTC)
    bar = Bar(
        symbol=Symbol("SPLT"),
        start=start,
        open=Decimal("12.3456789"),
        high=Decimal("12.5"),
        low=Decimal("12.0000004"),
        close=Decimal("12.25"),
        volume=1200,
    )
    event = BarsClosed(
        id=BarsClosed.id_for("contract-split-adjusted"),
        occurred_at=bar.end,
        trading_day=trading_day.day,
        bars=(bar,),
    )

    await store.write([event])

    [row] = await store.rows("bars_1m")
    assert (row["open"], row["low"]) == (Decimal("12.345679"), Decimal("12.000000"))
    assert str(row["high"]) == "12.500000"


async def test_a_new_event_carrying_a_stored_bar_adds_its_event_but_not_the_bar(
    store: Store, trading_day: TradingDayEvents
) -> None:
    first, later = trading_day.of(BarsClosed)[:2]
    again = dataclasses.replace(  # first's bars under another id, and one of later's
        first, id=BarsClosed.id_for("contract-bars-again"), bars=(*first.bars, later.bars[0])
    )
    await store.write([first])

    new = await store.write([again, later])

    assert new == 2
    assert {e.id for e in await store.events()} == {first.id, again.id, later.id}
    owner = {(r["symbol"], r["start"]): r["event_id"] for r in await store.rows("bars_1m")}
    kept_by = {(b.symbol, b.start): later.id for b in later.bars}
    kept_by[later.bars[0].symbol, later.bars[0].start] = again.id  # the first event carrying it
    kept_by |= {(b.symbol, b.start): first.id for b in first.bars}  # stored before
    assert owner == kept_by


async def test_an_unknown_table_is_refused_naming_the_tables(store: Store) -> None:
    with pytest.raises(DataError, match=r"no table 'trades_v2'") as raised:
        await store.rows("trades_v2")

    assert all(name in str(raised.value) for name in TABLES)


async def test_a_negative_limit_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.events(limit=-1)
    with pytest.raises(ValueError, match="limit"):
        await store.rows("events", limit=-1)


# -- config versions ------------------------------------------------------------------------------


def with_versions(events: Sequence[DomainEvent]) -> list[DomainEvent]:
    """`events` with a config version of its own on each that carries one, the first plan's ''."""
    out: list[DomainEvent] = []
    unknown = next(e.id for e in events if isinstance(e, PlanCreated))
    for n, event in enumerate(events):
        if isinstance(event, Versioned):
            version = "" if event.id == unknown else f"{n:012x}"
            event = dataclasses.replace(event, config_version=version)
        out.append(event)
    return out


def versions_of(events: Sequence[DomainEvent], table: str) -> dict[str, str]:
    """Event id -> config version of the events that project into `table`."""
    kind = VERSIONED_BY[table]
    return {e.id: e.config_version for e in events if isinstance(e, kind)}


async def stored_versions(store: Store, table: str) -> dict[str, str]:
    """Event id -> the config version of the rows of `table` (one version per event)."""
    found: dict[str, set[object]] = {}
    for row in await store.rows(table):
        found.setdefault(str(row["event_id"]), set()).add(row["config_version"])
    assert all(len(v) == 1 for v in found.values()), f"{table}: one version per event"
    return {event_id: str(next(iter(v))) for event_id, v in found.items()}


async def test_scans_plans_orders_and_trades_carry_the_config_version_of_their_event(
    store: Store, trading_day: TradingDayEvents
) -> None:
    events = with_versions(trading_day.events)

    await store.write(events)

    assert set(VERSIONED_BY) == set(VERSIONED)
    for table in VERSIONED:
        assert TABLES[table].names[-1] == "config_version", table
        want = versions_of(events, table)
        assert await stored_versions(store, table) == want, table
    plans = versions_of(events, "plans")
    assert "" in plans.values()  # unknown: stored as ''
    assert len(set(plans.values())) == len(plans)


async def test_a_database_at_schema_version_2_migrates_forward_and_stores_config_versions(
    durable: Durable, trading_day: TradingDayEvents
) -> None:
    events = with_versions(trading_day.events)
    first_order = next(i for i, e in enumerate(events) if isinstance(e, OrderPlaced))
    morning, rest = events[:first_order], events[first_order:]  # scan and plans; then the rest
    first = await durable.open()
    await first.migrate()
    await first.write(morning)
    await durable.to_version(2)  # as an agent of schema version 2 left the morning

    upgraded = await durable.open()
    info = await upgraded.migrate()
    await upgraded.write(rest)

    assert info.schema_version == SCHEMA_VERSION
    assert versions_of(morning, "plans")
    assert versions_of(rest, "trades")
    assert list(await upgraded.events()) == trading_day.in_store_order(events)
    for table in ("scan_candidates", "scan_rejections", "plans"):  # stored at version 2
        assert await stored_versions(upgraded, table) == dict.fromkeys(
            versions_of(morning, table), ""
        ), table
    for table in ("orders", "trades"):
        assert await stored_versions(upgraded, table) == versions_of(rest, table), table
    assert await upgraded.write(events) == 0


# -- candles --------------------------------------------------------------------------------------


def assert_same_candles(got: Sequence[Row], want: Sequence[Row], what: str) -> None:
    """Candle rows equal in order, columns and Python types (numbers at six places, UTC times)."""
    assert [(r["symbol"], r["start"]) for r in got] == [(r["symbol"], r["start"]) for r in want], (
        what
    )
    for got_row, want_row in zip(got, want, strict=True):
        assert tuple(got_row) == CANDLE_COLUMNS, what
        for name in CANDLE_COLUMNS:
            value, expected = got_row[name], want_row[name]
            where = f"{what}: {got_row['symbol']} {got_row['start']} {name}"
            assert type(value) is type(expected), f"{where}: {type(value)} is not {type(expected)}"
            assert value == expected, where
            if isinstance(value, Decimal):
                assert value.as_tuple().exponent == -6, f"{where}: {value} is not at six places"
            if isinstance(value, datetime):
                assert value.utcoffset() == timedelta(0), f"{where}: {value} is not UTC"


def bar_rows(codec: EventCodec, events: Sequence[DomainEvent]) -> list[Row]:
    """The `bars_1m` rows every store holds after writing `events`."""
    return expected_rows(codec, events)["bars_1m"]


async def test_candles_of_every_width_are_the_minute_bars_bucketed_by_time(
    store: Store, trading_day: TradingDayEvents, codec: EventCodec
) -> None:
    await store.write(trading_day.everything)
    bars = bar_rows(codec, trading_day.everything)
    symbol = str(bars[0]["symbol"])

    for width in CandleWidth:
        want = candles_of(bars, width)
        assert_same_candles(await store.candles(width), want, str(width))
        assert_same_candles(
            await store.candles(width, day=trading_day.day, symbol=symbol),
            [r for r in want if r["symbol"] == symbol],
            f"{width} of {symbol}",
        )
        assert await store.candles(width, day=trading_day.next_day) == []
    daily = await store.candles(CandleWidth.D1, day=trading_day.day)
    assert len(daily) == len({r["symbol"] for r in bars})
    assert sum(int(str(r["minutes"])) for r in daily) == len(bars)
    five = await store.candles(CandleWidth.M5, symbol=symbol)
    assert all(int(str(r["minutes"])) <= 5 for r in five)
    starts = [str(r["start"]) for r in five]
    assert starts == sorted(set(starts))


async def test_candles_follow_bars_written_after_the_day_was_read(
    store: Store, trading_day: TradingDayEvents, codec: EventCodec
) -> None:
    minutes = trading_day.of(BarsClosed)
    early = [e for n, e in enumerate(minutes) if n % 3 != 1]  # every bucket already has a minute
    late = [e for n, e in enumerate(minutes) if n % 3 == 1]
    await store.write(early)
    for width in (CandleWidth.M5, CandleWidth.D1, CandleWidth.M15):
        assert_same_candles(
            await store.candles(width, day=trading_day.day),
            candles_of(bar_rows(codec, early), width),
            f"{width} before the late bars",
        )

    await store.write(late)

    for width in (CandleWidth.M5, CandleWidth.D1, CandleWidth.M15):
        assert_same_candles(
            await store.candles(width, day=trading_day.day),
            candles_of(bar_rows(codec, minutes), width),
            f"{width} after the late bars",
        )
    assert await store.write(late) == 0  # redelivered: nothing new, the candles unchanged
    assert_same_candles(
        await store.candles(CandleWidth.M5, day=trading_day.day),
        candles_of(bar_rows(codec, minutes), CandleWidth.M5),
        "5m after the redelivery",
    )


async def test_a_store_without_bars_has_no_candles(store: Store) -> None:
    for width in CandleWidth:
        assert await store.candles(width) == []
