"""A day's outline from its events: each candidate's plan and why it was or was not traded."""

from __future__ import annotations

from dataclasses import replace

from fin_agent.app.cli.outline_view import outline_dict, outline_text
from fin_agent.app.day.outline import Outcome, outline_day
from fin_agent.domain.events import (
    DomainEvent,
    PlanCreated,
    PlanExecuted,
    PlanExpired,
    PlanRejected,
    PositionClosed,
    ScanCompleted,
)
from golden.samples import (
    BBB,
    CCC,
    DAY,
    ENTRY,
    EXIT,
    PLAN,
    PLAN_BBB,
    PLAN_CCC,
    SCAN,
    SCAN_AT,
    WIN,
    at,
)


def events() -> list[DomainEvent]:
    # AAA planned and traded to its target; BBB refused while planning; BRK.B planned, expired.
    ccc = replace(PLAN, id=PLAN_CCC, symbol=CCC, rank=3)
    return [
        ScanCompleted(id="s", occurred_at=SCAN_AT, trading_day=DAY, result=SCAN),
        PlanCreated(id="p1", occurred_at=at(5), trading_day=DAY, plan=PLAN),
        PlanRejected(
            id="r1",
            occurred_at=at(5),
            trading_day=DAY,
            plan_id=PLAN_BBB,
            symbol=BBB,
            reason="no_opening_range",
            detail="no bars in the opening range",
        ),
        PlanCreated(id="p3", occurred_at=at(5), trading_day=DAY, plan=ccc),
        PlanExecuted(id="e1", occurred_at=at(7), trading_day=DAY, plan_id=PLAN.id, fill=ENTRY),
        PositionClosed(id="c1", occurred_at=at(48), trading_day=DAY, trade=WIN, fill=EXIT),
        PlanExpired(id="x3", occurred_at=at(60), trading_day=DAY, plan_id=PLAN_CCC, symbol=CCC),
    ]


def test_outline_gives_each_candidate_its_plan_and_outcome() -> None:
    outline = outline_day(DAY, events())

    assert [(d.candidate.symbol, d.outcome) for d in outline.decisions] == [
        ("AAA", Outcome.TRADED),
        ("BBB", Outcome.NOT_PLANNED),
        ("BRK.B", Outcome.EXPIRED),
    ]
    traded, refused, _ = outline.decisions
    assert (traded.exit_reason, traded.net_pnl) == ("target", WIN.net_pnl)
    assert [r.reason for r in refused.refusals] == ["no_opening_range"]
    assert outline.scan_rejections == (("no_data", 1), ("gap_band", 1))


def test_outline_renders_as_text_and_json() -> None:
    outline = outline_day(DAY, events())

    text = outline_text([outline])
    fields = outline_dict(outline)

    assert text.splitlines() == [
        "2025-03-12  3 candidate(s); scan rejections: no_data 1, gap_band 1",
        "  AAA    long  gap    8.50%  plan 10.86 stop 10.49 target 11.60 x270  "
        "traded (target, net 194.40)",
        "  BBB    short gap   -6.25%  no plan: no_opening_range: no bars in the opening range",
        "  BRK.B  long  gap    5.00%  plan 10.86 stop 10.49 target 11.60 x270  "
        "expired: the entry never triggered before the deadline",
    ]
    assert fields["scan_rejections"] == {"no_data": 1, "gap_band": 1}
    assert [d["outcome"] for d in fields["candidate_decisions"]] == [
        "traded",
        "not_planned",
        "expired",
    ]
    assert fields["candidate_decisions"][1]["plan"] is None


def test_a_day_without_a_scan_has_no_candidates() -> None:
    outline = outline_day(DAY, [])

    assert (outline.decisions, outline.scan_rejections) == ((), ())
