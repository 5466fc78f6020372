"""The representative event of every type, fully populated, that the golden payloads pin.

`SAMPLES` holds one event per type at its current version; its golden is
`events/<type>/v<VERSION>.json`. Values here are literals (no domain arithmetic), so only a change
to the wire format can move a golden. A new field is added to its sample when its new version is
made; existing values are never changed (the older goldens decode to these samples).
`UPCAST_FILLS` says, for each golden of an older version, which fields of the sample the upcasters
fill in (and with what) when that payload is decoded today.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from fin_agent.domain.events import (
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
from fin_agent.domain.report import DailyReport, Performance
from fin_agent.domain.risk_engine import RiskReason, TradingState
from fin_agent.domain.trade_plan import EntryWindow, PlanState, TradePlan
from fin_agent.domain.values import Bar, DailyBar, Headline, Premarket, Side, symbol

D = Decimal
DAY: Final = date(2025, 3, 12)
SCAN_AT: Final = datetime(2025, 3, 12, 13, 0, tzinfo=UTC)  # 09:00 ET
OPEN: Final = datetime(2025, 3, 12, 13, 30, tzinfo=UTC)  # 09:30 ET
CLOSE: Final = datetime(2025, 3, 12, 20, 0, tzinfo=UTC)  # 16:00 ET
TRACE: Final = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CONFIG_VERSION: Final = "3f9a1c07d2be"
"""The whole-config hash stamped on the sample decisions (an example value)."""
STRATEGY_VERSION: Final = "b41e6d02c9a7"
"""The hash of the deciding sections stamped on the sample decisions (an example value)."""

AAA, BBB, CCC, DDD = symbol("AAA"), symbol("BBB"), symbol("BRK.B"), symbol("DDD")
PLAN_AAA: Final = "gap_and_go-2025-03-12-AAA"
PLAN_BBB: Final = "gap_and_go-2025-03-12-BBB"
PLAN_CCC: Final = "gap_and_go-2025-03-12-BRK.B"


def at(minutes: int) -> datetime:
    """`minutes` after the open."""
    return OPEN + timedelta(minutes=minutes)


HEADLINE = Headline(
    symbol=AAA,
    title="AAA beats estimates, raises guidance — «record» quarter ✓",
    source="wire",
    published_at=SCAN_AT - timedelta(hours=2, minutes=15),
    url="https://example.com/news/aaa-q4",
)
SNAPSHOT_V1 = UniverseSnapshot(
    day=DAY,
    taken_at=SCAN_AT,
    symbols=(
        SymbolSnapshot(
            symbol=AAA,
            daily_bars=(
                DailyBar(
                    symbol=AAA,
                    session=date(2025, 3, 10),
                    open=D("9.71"),
                    high=D("10.05"),
                    low=D("9.60"),
                    close=D("9.98"),
                    volume=1_180_400,
                ),
                DailyBar(
                    symbol=AAA,
                    session=date(2025, 3, 11),
                    open=D("9.98"),
                    high=D("10.20"),
                    low=D("9.70"),
                    close=D("10.00"),
                    volume=1_250_000,
                ),
            ),
            premarket=Premarket(symbol=AAA, last=D("10.85"), volume=180_000, as_of=SCAN_AT),
            headlines=(HEADLINE,),
        ),
        SymbolSnapshot(
            symbol=CCC,
            daily_bars=(
                DailyBar(
                    symbol=CCC,
                    session=date(2025, 3, 11),
                    open=D("480.10"),
                    high=D("484.00"),
                    low=D("478.25"),
                    close=D("482.50"),
                    volume=3_400_000,
                ),
            ),
            premarket=Premarket(symbol=CCC, last=D("506.62"), volume=None, as_of=SCAN_AT),
        ),
        SymbolSnapshot(symbol=DDD, daily_bars=(), premarket=None),
    ),
)
"""The snapshot as v1 of `scan.snapshot_taken` held it: no previous session, no quoted close."""
SNAPSHOT = dataclasses.replace(
    SNAPSHOT_V1,
    prev_session=date(2025, 3, 11),
    symbols=tuple(
        dataclasses.replace(
            item,
            premarket=dataclasses.replace(item.premarket, quoted_prev_close=D("482.55")),
        )
        if item.symbol == CCC and item.premarket is not None
        else item
        for item in SNAPSHOT_V1.symbols
    ),
)
CANDIDATES = (
    Candidate(
        symbol=AAA,
        rank=1,
        side=Side.LONG,
        prev_close=D("10.00"),
        pm_last=D("10.85"),
        pm_volume=180_000,
        gap_pct=D("8.5"),
        atr=D("0.7512"),
        adv=D("2350000.5"),
        history_bars=43,
        headline_count=1,
        top_headline=HEADLINE.title,
        skipped_rules=(),
    ),
    Candidate(
        symbol=BBB,
        rank=2,
        side=Side.SHORT,
        prev_close=D("24.00"),
        pm_last=D("22.50"),
        pm_volume=95_000,
        gap_pct=D("-6.25"),
        atr=D("1.1034"),
        adv=D("1800000"),
        history_bars=43,
        headline_count=0,
        top_headline=None,
        skipped_rules=(),
    ),
    Candidate(
        symbol=CCC,
        rank=3,
        side=Side.LONG,
        prev_close=D("482.50"),
        pm_last=D("506.62"),
        pm_volume=None,
        gap_pct=D("4.998963"),
        atr=D("6.2500"),
        adv=D("3400000"),
        history_bars=43,
        headline_count=0,
        top_headline=None,
        skipped_rules=(RejectRule.PM_VOLUME, RejectRule.CATALYST),
    ),
)
SCAN = ScanResult(
    day=DAY,
    taken_at=SCAN_AT,
    candidates=CANDIDATES,
    rejections=(
        Rejection(symbol=DDD, rule=RejectRule.NO_DATA, detail="no daily bars before 2025-03-12"),
        Rejection(
            symbol=symbol("EEE"), rule=RejectRule.GAP_BAND, detail="gap 1.2% < 4%", gap_pct=D("1.2")
        ),
    ),
)
PLAN = TradePlan(
    id=PLAN_AAA,
    trading_day=DAY,
    strategy="gap_and_go",
    symbol=AAA,
    side=Side.LONG,
    rank=1,
    entry=D("10.86"),
    stop=D("10.49"),
    target=D("11.60"),
    qty=270,
    atr=D("0.7512"),
    or_high=D("10.85"),
    or_low=D("10.50"),
    window=EntryWindow(opens_at=at(5), closes_at=at(60)),
    state=PlanState.PLANNED,
)
ORDER = BracketOrder(
    client_order_id=PLAN_AAA,
    symbol=AAA,
    side=Side.LONG,
    qty=270,
    trigger=D("10.86"),
    stop=D("10.49"),
    target=D("11.60"),
    placed_at=at(7),
)
ENTRY = Fill(
    client_order_id=PLAN_AAA,
    symbol=AAA,
    side=Side.LONG,
    kind=FillKind.ENTRY,
    qty=270,
    price=D("10.87"),
    commission=D("1.35"),
    at=at(7),
)
EXIT = Fill(
    client_order_id=PLAN_AAA,
    symbol=AAA,
    side=Side.LONG,
    kind=FillKind.TARGET,
    qty=270,
    price=D("11.60"),
    commission=D("1.35"),
    at=at(48),
)
WIN = ClosedTrade(
    plan_id=PLAN_AAA,
    symbol=AAA,
    side=Side.LONG,
    qty=270,
    entry_price=D("10.87"),
    exit_price=D("11.60"),
    entry_at=at(7),
    exit_at=at(48),
    exit_reason=ExitReason.TARGET,
    gross_pnl=D("197.10"),
    commission=D("2.70"),
    net_pnl=D("194.40"),
    r_multiple=D("1.9459"),
)
LOSS = ClosedTrade(
    plan_id=PLAN_BBB,
    symbol=BBB,
    side=Side.SHORT,
    qty=410,
    entry_price=D("22.38"),
    exit_price=D("22.62"),
    entry_at=at(9),
    exit_at=at(21),
    exit_reason=ExitReason.STOP,
    gross_pnl=D("-98.40"),
    commission=D("4.10"),
    net_pnl=D("-102.50"),
    r_multiple=D("-1.0250"),
)


def bar(name: str, minute: int, close: str) -> Bar:
    """A 1-minute bar of `name` starting `minute` minutes after the open."""
    price = D(close)
    return Bar(
        symbol=symbol(name),
        start=at(minute),
        open=price - D("0.03"),
        high=price + D("0.05"),
        low=price - D("0.06"),
        close=price,
        volume=12_400 + 37 * minute,
    )


SAMPLES: Final[dict[str, DomainEvent]] = {
    e.TYPE: e
    for e in (
        BarsClosed(
            id=BarsClosed.id_for(at(10).isoformat()),
            occurred_at=at(11),
            trading_day=DAY,
            bars=(bar("AAA", 10, "11.02"), bar("BBB", 10, "22.41"), bar("BRK.B", 10, "507.10")),
        ),
        DayStarted(
            id=DayStarted.id_for("gap_and_go:2025-03-12"),
            occurred_at=SCAN_AT,
            trading_day=DAY,
            start_equity=D("100000.00"),
            strategy="gap_and_go",
            session_open=OPEN,
            session_close=CLOSE,
        ),
        SnapshotTaken.of("gap_and_go:2025-03-12", at=SCAN_AT, day=DAY, snapshot=SNAPSHOT).on_bus(),
        ScanCompleted(
            id=ScanCompleted.id_for("gap_and_go:2025-03-12"),
            occurred_at=SCAN_AT,
            trading_day=DAY,
            result=SCAN,
            config_version=CONFIG_VERSION,
            strategy_version=STRATEGY_VERSION,
        ),
        SignalGenerated(
            id=SignalGenerated.id_for("gap_and_go:2025-03-12:AAA"),
            occurred_at=SCAN_AT,
            trading_day=DAY,
            candidate=CANDIDATES[0],
        ),
        PlanCreated(
            id=PlanCreated.id_for(PLAN_AAA),
            occurred_at=at(5),
            trading_day=DAY,
            plan=PLAN,
            config_version=CONFIG_VERSION,
            strategy_version=STRATEGY_VERSION,
        ),
        PlanRejected(
            id=PlanRejected.id_for(PLAN_CCC),
            occurred_at=at(5),
            trading_day=DAY,
            plan_id=PLAN_CCC,
            symbol=CCC,
            reason="zero_size",
            detail="risk of $1000.00 buys 0 shares at a $3125.00 stop distance",
        ),
        OrderPlaced(
            id=OrderPlaced.id_for(PLAN_AAA),
            occurred_at=at(7),
            trading_day=DAY,
            order=ORDER,
            config_version=CONFIG_VERSION,
            strategy_version=STRATEGY_VERSION,
        ),
        PlanExecuted(
            id=PlanExecuted.id_for(PLAN_AAA),
            occurred_at=at(7),
            trading_day=DAY,
            plan_id=PLAN_AAA,
            fill=ENTRY,
        ),
        PlanExpired(
            id=PlanExpired.id_for(PLAN_CCC),
            occurred_at=at(60),
            trading_day=DAY,
            plan_id=PLAN_CCC,
            symbol=CCC,
        ),
        PositionClosed(
            id=PositionClosed.id_for(PLAN_AAA),
            occurred_at=at(48),
            trading_day=DAY,
            trade=WIN,
            fill=EXIT,
            config_version=CONFIG_VERSION,
            strategy_version=STRATEGY_VERSION,
        ),
        RiskStateChanged(
            id=RiskStateChanged.id_for("2025-03-12:reducing:2025-03-12T15:05:00+00:00"),
            occurred_at=at(95),
            trading_day=DAY,
            previous=TradingState.ACTIVE,
            current=TradingState.REDUCING,
            reason=RiskReason.DAILY_LOSS_LIMIT,
            detail="daily loss 2.1% reached the 2% limit: managing open positions only",
        ),
        ErrorRaised(
            id=ErrorRaised.id_for("feed|2025-03-12T14:02"),
            occurred_at=at(32),
            trading_day=DAY,
            source="feed.finnhub",
            code="feed_stalled",
            message="no trade for 30 s on 12 symbols — «reconnecting» ✓",
            severity=Severity.CRITICAL,
        ),
        ReportDaily(
            id=ReportDaily.id_for("gap_and_go:2025-03-12"),
            occurred_at=CLOSE,
            trading_day=DAY,
            report=DailyReport(
                day=DAY,
                strategy="gap_and_go",
                candidates=3,
                plans=2,
                plans_rejected=1,
                performance=Performance(
                    start_equity=D("100000.00"),
                    end_equity=D("100091.90"),
                    trades=(LOSS, WIN),
                    gross_pnl=D("98.70"),
                    commissions=D("6.80"),
                    net_pnl=D("91.90"),
                    wins=1,
                    losses=1,
                    win_rate=D("0.5"),
                    avg_r=D("0.46045"),
                    max_drawdown=D("102.50"),
                    max_drawdown_pct=D("0.1025"),
                ),
            ),
        ),
        ConfigChanged(
            id=ConfigChanged.id_for("0123456789ab->3f9a1c07d2be:2025-03-12T12:40:00+00:00"),
            occurred_at=SCAN_AT - timedelta(minutes=20),
            trading_day=DAY,
            version=CONFIG_VERSION,
            previous_version="0123456789ab",
            applied_keys=("scan.gap_min_pct", "risk.max_open_positions"),
            restart_keys=("bus.kind",),
        ),
        OperatorCommand(
            id=OperatorCommand.id_for("ops-2025-03-12-0001"),
            occurred_at=at(12),
            trading_day=DAY,
            command_id="ops-2025-03-12-0001",
            kind=CommandKind.FLATTEN,
            reason="news halt pending — «flatten» ✓",
            symbol="BRK.B",
            plan_id=PLAN_CCC,
            source="dashboard",
            issued_by="trader@desk",
        ),
        OperatorCommandApplied(
            id=OperatorCommandApplied.id_for("ops-2025-03-12-0001"),
            occurred_at=at(13),
            trading_day=DAY,
            command_id="ops-2025-03-12-0001",
            kind=CommandKind.FLATTEN,
            detail="closing BRK.B x40 at market",
        ),
        OperatorCommandRefused(
            id=OperatorCommandRefused.id_for("ops-2025-03-12-0002"),
            occurred_at=at(13),
            trading_day=DAY,
            command_id="ops-2025-03-12-0002",
            kind=CommandKind.CANCEL,
            reason="plan gap_and_go-2025-03-12-AAA has an open position: flatten AAA instead",
        ),
        NewsPublished(
            id=NewsPublished.id_for("finnhub:7712301"),
            occurred_at=SCAN_AT - timedelta(minutes=30, seconds=2),
            trading_day=DAY,
            item=NewsItem(
                news_id="finnhub:7712301",
                symbols=(symbol("NVAX"), symbol("PFE")),
                title="Novavax wins approval for its updated vaccine",
                source="Reuters",
                published_at=SCAN_AT - timedelta(minutes=30, seconds=5),
                url="https://news.example.com/nvax/approval",
                summary="The regulator approved the shot for adults.",
                category="company",
            ),
        ),
        NewsAttached(
            id=NewsAttached.id_for("2025-03-12:NVAX:finnhub:7712301"),
            occurred_at=SCAN_AT + timedelta(minutes=50),
            trading_day=DAY,
            symbol=symbol("NVAX"),
            plan_id="2025-03-12:NVAX:gap_and_go",
            news_id="finnhub:7712301",
            title="Novavax prices a discounted share offering",
            source="Reuters",
            published_at=SCAN_AT + timedelta(minutes=49),
            url="https://news.example.com/nvax/offering",
            at_scan=False,
            keywords=("offering",),
            cancelled=True,
            position_open=True,
        ),
    )
}

UPCAST_FILLS: Final[dict[tuple[str, str], dict[str, Any]]] = {
    **{
        (event_type, "v1"): {"config_version": "", "strategy_version": ""}
        for event_type in ("scan.completed", "plan.created", "order.placed", "position.closed")
    },
    # v1 to v3 carried the snapshot inline (v2 as objects, v3 as columns) and no record
    ("scan.snapshot_taken", "v1"): {"snapshot": SNAPSHOT_V1, "record": ""},
    ("scan.snapshot_taken", "v2"): {"snapshot": SNAPSHOT, "record": ""},
    ("scan.snapshot_taken", "v3"): {"snapshot": SNAPSHOT, "record": ""},
    # v4 with the snapshot inline and no record: an upcast v3 event published again
    ("scan.snapshot_taken", "v4-inline"): {"snapshot": SNAPSHOT, "record": ""},
    **{
        (event_type, "v1-config_version"): {"strategy_version": ""}
        for event_type in ("scan.completed", "plan.created", "order.placed", "position.closed")
    },
}
"""(type, golden file stem) of an older version -> the sample's fields the upcasters fill in.

The decisions' v1 as first released had no `config_version`; main then wrote it, still as v1
(`v1-config_version`); v2 added `strategy_version`. `scan.snapshot_taken` v2 added the snapshot's
`prev_session` and each pre-market's `quoted_prev_close` (both None from v1); v3 writes the same
snapshot as columns."""


def decoded_today(event_type: str, name: str) -> DomainEvent:
    """What the golden `<event_type>/<name>.json` decodes to today: the type's sample, with the
    fields the upcasters fill in for an older version (`UPCAST_FILLS`; none for the current)."""
    return dataclasses.replace(SAMPLES[event_type], **UPCAST_FILLS.get((event_type, name), {}))
