"""Renders each day's candidates and decisions for the backtest report, as text and as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from fin_agent.app.cli.report_view import _money, _price, report_dict, report_text
from fin_agent.app.day.outline import DayOutline, Decision, Outcome
from fin_agent.domain.gap_scanner import Candidate
from fin_agent.domain.report import DailyReport, Performance

GAP_STEP = Decimal("0.01")
WHOLE = Decimal(1)


def candidate_dict(c: Candidate) -> dict[str, Any]:
    """A candidate's scan figures as JSON-ready fields (`pm_volume` null: the data had no
    pre-market bars, and `skipped_rules` says the volume rule was skipped)."""
    return {
        "symbol": c.symbol,
        "rank": c.rank,
        "side": str(c.side),
        "gap_pct": str(c.gap_pct.quantize(GAP_STEP)),
        "prev_close": _price(c.prev_close),
        "pm_last": _price(c.pm_last),
        "pm_volume": c.pm_volume,
        "adv": str(c.adv.quantize(WHOLE)),
        "atr": _price(c.atr),
        "history_bars": c.history_bars,
        "skipped_rules": [str(r) for r in c.skipped_rules],
    }


def decision_dict(decision: Decision) -> dict[str, Any]:
    """One candidate's scan figures, plan and outcome as JSON-ready fields."""
    plan = decision.plan
    return {
        **candidate_dict(decision.candidate),
        "plan": None
        if plan is None
        else {
            "plan_id": plan.id,
            "entry": _price(plan.entry),
            "stop": _price(plan.stop),
            "target": _price(plan.target),
            "qty": plan.qty,
        },
        "outcome": str(decision.outcome),
        "rejections": [{"reason": r.reason, "detail": r.detail} for r in decision.refusals],
        "exit_reason": decision.exit_reason,
        "net_pnl": None if decision.net_pnl is None else _money(decision.net_pnl),
    }


def outline_dict(outline: DayOutline) -> dict[str, Any]:
    """A day's decisions and the scan's rejections by rule, to merge into its JSON entry."""
    return {
        "candidate_decisions": [decision_dict(d) for d in outline.decisions],
        "scan_rejections": dict(outline.scan_rejections),
    }


def outline_text(outlines: Sequence[DayOutline]) -> str:
    """Per day: the scan's rejections by rule, then one line per candidate with its decision."""
    lines: list[str] = []
    for outline in outlines:
        lines.append(
            f"{outline.day}  {len(outline.decisions)} candidate(s); "
            f"scan rejections: {counted_text(outline.scan_rejections)}"
        )
        lines.extend(f"  {_decision_line(d)}" for d in outline.decisions)
    return "\n".join(lines)


def counted_text(counts: Sequence[tuple[str, int]]) -> str:
    """Rejections counted by rule as `gap_band 20, adv 1` (`none` without any)."""
    return ", ".join(f"{rule} {count}" for rule, count in counts) or "none"


def _decision_line(decision: Decision) -> str:
    c, plan = decision.candidate, decision.plan
    head = f"{c.symbol:<6} {c.side:<5} gap {c.gap_pct.quantize(GAP_STEP):>7}%"
    if plan is not None:
        head += (
            f"  plan {_price(plan.entry)} stop {_price(plan.stop)} "
            f"target {_price(plan.target)} x{plan.qty}"
        )
    why = "; ".join(f"{r.reason}: {r.detail}" if r.detail else r.reason for r in decision.refusals)
    if decision.outcome is Outcome.TRADED:
        tail = f"traded ({decision.exit_reason or 'open'}"
        if decision.net_pnl is not None:
            tail += f", net {_money(decision.net_pnl)}"
        tail += ")"
        if why:
            tail += f" after {why}"
    elif decision.outcome is Outcome.EXPIRED:
        tail = "expired: the entry never triggered before the deadline"
    elif decision.outcome is Outcome.OPEN:
        tail = "armed, not triggered"
    else:
        label = "no plan" if decision.outcome is Outcome.NOT_PLANNED else "rejected"
        tail = f"{label}: {why or 'no reason recorded'}"
    return f"{head}  {tail}"


def backtest_report(
    reports: Sequence[DailyReport],
    summary: Performance,
    outlines: Sequence[DayOutline],
    *,
    as_json: bool,
) -> str:
    """The report with each day's candidates and decisions: a section after the table (text), or
    `candidate_decisions` and `scan_rejections` in each day's entry (JSON)."""
    if not as_json:
        return f"{report_text(reports, summary)}\n\n{outline_text(outlines)}"
    whole = report_dict(reports, summary)
    by_day = {o.day.isoformat(): o for o in outlines}
    for entry in whole["days"]:
        outline = by_day.get(entry["day"])
        if outline is not None:
            entry.update(outline_dict(outline))
    return json.dumps(whole, indent=2)
