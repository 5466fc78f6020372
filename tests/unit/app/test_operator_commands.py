"""Operator commands decided by a trading day: halt, resume, flatten, cancel, repeats, refusals."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import pytest

from day_market import DAY, NY, D, bar, et, history, of_type, opening_bars
from fin_agent.adapters.broker.paper import PaperBroker
from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import (
    FixedCalendar,
    FixedClock,
    InMemoryEventBus,
    InMemoryMarketData,
    InMemoryNews,
    InMemoryStore,
)
from fin_agent.adapters.storage.memory_scan_records import InMemoryScanRecords
from fin_agent.app.bootstrap import build_simulation, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.day.agent import Agent
from fin_agent.app.day.audit import audit_day
from fin_agent.app.day.commands import NO_DAY, CommandRequest, OperatorDesk
from fin_agent.app.day.ports import DayPorts
from fin_agent.app.day.trading_day import TradingDay
from fin_agent.app.observability.notifications import notification_for
from fin_agent.app.runner import run_session
from fin_agent.domain.day_times import DayTimes
from fin_agent.domain.events import (
    CommandKind,
    OperatorCommand,
    OperatorCommandApplied,
    OperatorCommandRefused,
    OrderPlaced,
    PlanRejected,
    PositionClosed,
    RiskStateChanged,
)
from fin_agent.domain.orders import ExitReason
from fin_agent.domain.risk_engine import RiskReason, TradingState
from fin_agent.domain.rules import Strategy
from fin_agent.domain.trade_plan import PlanState
from fin_agent.domain.values import Bar, Premarket, symbol
from fin_agent.ports.notifier import NotificationKind

REPO = Path(__file__).resolve().parents[3]


def market_with(gappers: tuple[str, ...], later: list[Bar]) -> InMemoryMarketData:
    """Each gapper: ATR 0.40, opening range 10.90-11.20, so entry 11.21, stop 11.01, target
    11.61."""
    market = InMemoryMarketData()
    for sym in gappers:
        market.add_daily(history(sym))
        market.premarkets[(symbol(sym), DAY)] = Premarket(
            symbol=symbol(sym), last=D(11), volume=200_000, as_of=et(9, 0)
        )
        market.add_intraday(opening_bars(sym))
    market.add_intraday(later)
    return market


def make_day(
    market: InMemoryMarketData, records: InMemoryScanRecords | None = None
) -> tuple[TradingDay, InMemoryEventBus]:
    strategy = Strategy()
    session = FixedCalendar().session(DAY)
    assert session is not None
    bus = InMemoryEventBus()
    ports = DayPorts(
        clock=FixedClock(et(9, 0)), market=market, news=InMemoryNews(),
        orders=PaperBroker(strategy.costs), bus=bus,
        records=records or InMemoryScanRecords(),
    )  # fmt: skip
    day = TradingDay(
        session=session,
        times=DayTimes.of(session, strategy, NY, time(9, 0)),
        strategy=strategy,
        start_equity=D(100_000),
        ports=ports,
    )
    return day, bus


def command(command_id: str, kind: CommandKind, **fields: str) -> OperatorCommand:
    return OperatorCommand(
        id=OperatorCommand.id_for(command_id), occurred_at=et(9, 0), trading_day=DAY,
        command_id=command_id, kind=kind, source="test", **fields,
    )  # fmt: skip


async def trade(
    day: TradingDay, market: InMemoryMarketData, commands: dict[datetime, list[OperatorCommand]]
) -> None:
    """The session's minutes; the commands of a minute are queued just before it."""
    await day.scan()
    minutes: dict[datetime, list[Bar]] = {}
    for b in await market.session_bars(DAY, day.watchlist):
        minutes.setdefault(b.start, []).append(b)
    for start in sorted(minutes):
        for queued in commands.get(start, []):
            day.take_command(queued)
        await day.on_bars(minutes[start])


@pytest.mark.asyncio
async def test_a_halt_stops_new_entries_and_a_resume_restores_them() -> None:
    market = market_with(
        ("GAPR",),
        [
            bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22"),  # triggers while halted
            bar("GAPR", 9, 40, "11.22", "11.30", "11.20", "11.28"),  # and again once resumed
        ],
    )
    day, bus = make_day(market)
    halt = command("h1", CommandKind.HALT, reason="news pending")
    resume = command("r1", CommandKind.RESUME)

    await trade(day, market, {et(9, 30): [halt], et(9, 40): [resume]})

    changes = [(e.current, e.reason, e.occurred_at) for e in of_type(bus, RiskStateChanged)]
    assert changes == [
        (TradingState.HALTED, RiskReason.OPERATOR, et(9, 30)),
        (TradingState.ACTIVE, RiskReason.OPERATOR, et(9, 40)),
    ]
    [refusal] = of_type(bus, PlanRejected)
    assert (refusal.reason, refusal.occurred_at) == ("risk:halted", et(9, 35))
    [placed] = of_type(bus, OrderPlaced)
    assert placed.occurred_at == et(9, 40)
    applied = [(e.command_id, e.kind) for e in of_type(bus, OperatorCommandApplied)]
    assert applied == [("h1", CommandKind.HALT), ("r1", CommandKind.RESUME)]
    assert "news pending (by test)" in of_type(bus, RiskStateChanged)[0].detail


@pytest.mark.asyncio
async def test_a_halted_day_still_takes_an_open_position_to_its_target() -> None:
    market = market_with(
        ("GAPR",),
        [
            bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22"),  # entry fills at 11.21
            bar("GAPR", 9, 50, "11.30", "11.65", "11.28", "11.60"),  # target 11.61, halted
        ],
    )
    day, bus = make_day(market)

    await trade(day, market, {et(9, 50): [command("h1", CommandKind.HALT, reason="stop")]})

    assert day.risk.state is TradingState.HALTED
    [closed] = of_type(bus, PositionClosed)
    assert (closed.trade.exit_reason, closed.trade.exit_price) == (ExitReason.TARGET, D("11.61"))


@pytest.mark.asyncio
async def test_a_halted_day_still_stops_out_and_flattens_at_the_end() -> None:
    market = market_with(
        ("GAPR", "GAPS"),
        [
            bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("GAPS", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("GAPR", 9, 45, "11.10", "11.12", "10.95", "11.00"),  # stop 11.01
            bar("GAPS", 15, 55, "11.40", "11.45", "11.35", "11.40"),  # the flatten bar
        ],
    )
    day, bus = make_day(market)

    await trade(day, market, {et(9, 40): [command("h1", CommandKind.HALT, reason="stop")]})
    await day.finish()

    exits = {
        c.trade.symbol: (c.trade.exit_reason, c.trade.exit_price)
        for c in of_type(bus, PositionClosed)
    }
    assert exits == {
        "GAPR": (ExitReason.STOP, D("11.01")),
        "GAPS": (ExitReason.FLATTEN, D("11.40")),
    }


@pytest.mark.asyncio
async def test_flatten_one_symbol_closes_it_at_the_next_bars_open_and_leaves_the_other() -> None:
    market = market_with(
        ("GAPR", "GAPS"),
        [
            bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("GAPS", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("GAPR", 10, 0, "11.30", "11.35", "11.25", "11.30"),
            bar("GAPS", 10, 0, "11.32", "11.36", "11.28", "11.30"),
        ],
    )
    day, bus = make_day(market)

    await trade(day, market, {et(10, 0): [command("f1", CommandKind.FLATTEN, symbol="GAPS")]})

    [closed] = of_type(bus, PositionClosed)
    assert (closed.trade.symbol, closed.trade.exit_price) == ("GAPS", D("11.32"))
    assert closed.trade.exit_reason is ExitReason.FLATTEN
    assert [p.symbol for p in day.ledger.open_positions] == ["GAPR"]
    [applied] = of_type(bus, OperatorCommandApplied)
    assert applied.detail.startswith("closing GAPS x")


@pytest.mark.asyncio
async def test_flatten_all_closes_every_open_position() -> None:
    market = market_with(
        ("GAPR", "GAPS"),
        [
            bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("GAPS", 9, 35, "11.15", "11.25", "11.12", "11.22"),
            bar("GAPR", 10, 0, "11.30", "11.35", "11.25", "11.30"),
            bar("GAPS", 10, 0, "11.32", "11.36", "11.28", "11.30"),
        ],
    )
    day, bus = make_day(market)

    await trade(day, market, {et(10, 0): [command("f1", CommandKind.FLATTEN)]})

    assert sorted(c.trade.symbol for c in of_type(bus, PositionClosed)) == ["GAPR", "GAPS"]
    assert day.ledger.open_positions == ()


@pytest.mark.asyncio
async def test_cancel_ends_a_plan_that_then_never_enters() -> None:
    market = market_with(("GAPR",), [bar("GAPR", 9, 36, "11.15", "11.25", "11.12", "11.22")])
    day, bus = make_day(market)
    plan_id = "gap_and_go-2025-03-04-GAPR"

    await trade(day, market, {et(9, 36): [command("c1", CommandKind.CANCEL, plan_id=plan_id)]})

    assert day.plans[symbol("GAPR")].state is PlanState.CANCELLED
    assert of_type(bus, OrderPlaced) == []
    [cancelled] = of_type(bus, PlanRejected)
    assert cancelled.reason == "operator_cancelled"


@pytest.mark.asyncio
async def test_the_same_command_id_twice_applies_once() -> None:
    market = market_with(("GAPR",), [bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22")])
    day, bus = make_day(market)
    halt = command("h1", CommandKind.HALT, reason="once")

    await trade(day, market, {et(9, 30): [halt, halt], et(9, 35): [halt]})

    assert len(of_type(bus, RiskStateChanged)) == 1
    assert len(of_type(bus, OperatorCommandApplied)) == 1
    assert of_type(bus, OperatorCommandRefused) == []


@pytest.mark.asyncio
async def test_a_resumed_day_does_not_apply_a_decided_command_again() -> None:
    market = market_with(("GAPR",), [bar("GAPR", 9, 35, "11.15", "11.25", "11.12", "11.22")])
    records = InMemoryScanRecords()  # the store's, which the restarted day reads
    day, bus = make_day(market, records)
    halt = command("h1", CommandKind.HALT, reason="before the restart")
    await trade(day, market, {et(9, 30): [halt]})

    again, _ = make_day(market, records)
    await again.resume(bus.published)

    assert again.risk.state is TradingState.HALTED
    assert again.take_command(halt) is False  # the redelivered command is known


@pytest.mark.parametrize(
    ("kind", "fields", "reason"),
    [
        (CommandKind.RESUME, {}, "trading is not halted (it is active)"),
        (CommandKind.FLATTEN, {"symbol": "NOPE"}, "no open position in NOPE (open: none)"),
        (CommandKind.CANCEL, {"plan_id": "x"}, "no plan 'x' today"),
    ],
)
@pytest.mark.asyncio
async def test_a_command_that_cannot_apply_is_refused_with_the_reason(
    kind: CommandKind, fields: dict[str, str], reason: str
) -> None:
    market = market_with(("GAPR",), [])
    day, bus = make_day(market)

    await trade(day, market, {et(9, 30): [command("x1", kind, **fields)]})

    [refused] = of_type(bus, OperatorCommandRefused)
    assert refused.reason.startswith(reason)
    assert of_type(bus, OperatorCommandApplied) == []


@pytest.mark.asyncio
async def test_a_command_with_no_day_running_is_refused_at_once() -> None:
    bus = InMemoryEventBus()
    store = InMemoryStore(EventCodec(default_registry()))
    desk = OperatorDesk(
        agent=Agent(), bus=bus, store=store, clock=FixedClock(et(8, 0)), timezone=NY
    )
    desk.attach(bus)

    issued, new = await desk.issue(CommandRequest(command_id="k1", kind=CommandKind.HALT))
    _, repeated = await desk.issue(CommandRequest(command_id="k1", kind=CommandKind.HALT))

    assert (new, repeated) == (True, False)
    assert issued.trading_day == DAY
    [refused] = of_type(bus, OperatorCommandRefused)
    assert (refused.command_id, refused.reason) == ("k1", NO_DAY)
    assert len(of_type(bus, OperatorCommand)) == 1


def test_a_commands_outcome_is_notified_as_an_operator_command() -> None:
    applied = OperatorCommandApplied(
        id=OperatorCommandApplied.id_for("n1"), occurred_at=et(10, 0), trading_day=DAY,
        command_id="n1", kind=CommandKind.HALT, detail="trading halted: no new entries",
    )  # fmt: skip

    message = notification_for(applied)

    assert message is not None
    assert (message.kind, message.title) == (
        NotificationKind.OPERATOR_COMMAND,
        "Operator halt applied",
    )
    assert message.text == "trading halted: no new entries"


@pytest.mark.asyncio
async def test_an_audit_replays_a_recorded_days_operator_commands_where_it_decided_them(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        REPO / "config.yaml", environ={"FIN_AGENT_DATA_DIR": str(tmp_path)}, secrets_dir=tmp_path
    )
    container = await build_simulation(settings, bus="memory", store="memory")
    session = container.calendar.session(settings.simulator.start_date)
    assert session is not None
    halt = OperatorCommand(
        id=OperatorCommand.id_for("a1"), occurred_at=session.open, trading_day=session.day,
        command_id="a1", kind=CommandKind.HALT, reason="audit me",
    )  # fmt: skip
    async with running(container):
        await run_session(container, session, D(100_000), commands=[(session.open, halt)])
        await container.store.write([halt])  # stored as the bus's coordinator stores it

        result = await audit_day(container.store, settings, session.day)
        halted = await container.store.events(day=session.day, types=[RiskStateChanged.TYPE])

    assert [e.current for e in halted if isinstance(e, RiskStateChanged)] == [TradingState.HALTED]
    assert result.matches, result.differences
