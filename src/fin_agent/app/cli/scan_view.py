"""Renders one day's scan for `fin-agent scan`: the candidates with their figures and the
rejections counted by rule, as text or JSON (the backtest's outline shows the same figures)."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from fin_agent.app.cli.outline_view import GAP_STEP, WHOLE, candidate_dict, counted_text
from fin_agent.app.cli.report_view import _price
from fin_agent.app.day.outline import rejections_by_rule
from fin_agent.domain.gap_scanner import Candidate, ScanResult

_HEADER = (
    f"{'rank':>4}  {'symbol':<8}{'side':<6}{'gap %':>8}{'price':>10}{'prev close':>12}"
    f"{'pm volume':>12}{'adv':>13}{'atr':>9}"
)


def scan_json(result: ScanResult) -> str:
    """The scan as a JSON object: day, time, symbols scanned, candidates, rejections by rule,
    and each rejected symbol with its rule and why."""
    return json.dumps(
        {
            "day": result.day.isoformat(),
            "taken_at": result.taken_at.isoformat(),
            "symbols_scanned": _scanned(result),
            "candidates": [candidate_dict(c) for c in result.candidates],
            "scan_rejections": dict(rejections_by_rule(result)),
            "rejections": [
                {
                    "symbol": r.symbol,
                    "rule": str(r.rule),
                    "detail": r.detail,
                    "gap_pct": None if r.gap_pct is None else str(r.gap_pct.quantize(GAP_STEP)),
                }
                for r in result.rejections
            ],
        },
        indent=2,
    )


def scan_text(result: ScanResult, zone: ZoneInfo) -> str:
    """A heading line, then one row per candidate in rank order."""
    at = result.taken_at.astimezone(zone)
    lines = [
        f"{result.day}  scan at {at:%H:%M} {at.tzname()}: {len(result.candidates)} candidate(s) "
        f"of {_scanned(result)} symbol(s); rejections: {counted_text(rejections_by_rule(result))}"
    ]
    if result.candidates:
        lines.append(_HEADER)
        lines.extend(_row(c) for c in result.candidates)
    skipped = sorted({str(r) for c in result.candidates for r in c.skipped_rules})
    if skipped:
        lines.append(f"skipped rules (the data lacks what they need): {', '.join(skipped)}")
    return "\n".join(lines)


def _row(c: Candidate) -> str:
    volume = "-" if c.pm_volume is None else f"{c.pm_volume:,}"
    return (
        f"{c.rank:>4}  {c.symbol:<8}{c.side:<6}{c.gap_pct.quantize(GAP_STEP):>8}"
        f"{_price(c.pm_last):>10}{_price(c.prev_close):>12}{volume:>12}"
        f"{c.adv.quantize(WHOLE):>13,}{_price(c.atr):>9}"
    )


def _scanned(result: ScanResult) -> int:
    """Every symbol scanned ends up a candidate or a rejection."""
    return len(result.candidates) + len(result.rejections)
