"""The backtest report's content and page from a run worked by hand: two sessions, two trades."""

from __future__ import annotations

import math
import re
import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fin_agent.app.report import report_content, report_html
from fin_agent.app.report.material import BacktestResult, Benchmark, TradeContext
from fin_agent.app.report.page import shown
from fin_agent.app.report.svg import trade_chart
from fin_agent.domain.orders import ExitReason
from fin_agent.domain.positions import ClosedTrade
from fin_agent.domain.report import DailyReport, performance
from fin_agent.domain.trade_plan import EntryWindow, TradePlan
from fin_agent.domain.values import Bar, Session, Side, symbol

D = Decimal
DAY1, DAY2 = date(2024, 1, 2), date(2024, 1, 3)  # a Tuesday and a Wednesday
ZONE = "America/New_York"


def session(day: date) -> Session:
    opens = datetime(day.year, day.month, day.day, 14, 30, tzinfo=UTC)  # 09:30 ET
    return Session(day=day, open=opens, close=opens + timedelta(minutes=390))


def closed(
    day: date, entry: str, exit_: str, qty: int, in_min: int, out_min: int, r: str
) -> ClosedTrade:
    opens = session(day).open
    pnl = (D(exit_) - D(entry)) * qty
    return ClosedTrade(
        plan_id=f"gap_and_go-{day}-AAA",
        symbol=symbol("AAA"),
        side=Side.LONG,
        qty=qty,
        entry_price=D(entry),
        exit_price=D(exit_),
        entry_at=opens + timedelta(minutes=in_min),
        exit_at=opens + timedelta(minutes=out_min),
        exit_reason=ExitReason.TARGET if pnl > 0 else ExitReason.STOP,
        gross_pnl=pnl,
        commission=D(0),
        net_pnl=pnl,
        r_multiple=D(r),
    )


def bars(day: date, count: int) -> tuple[Bar, ...]:
    opens = session(day).open
    return tuple(
        Bar(
            symbol=symbol("AAA"),
            start=opens + timedelta(minutes=i),
            open=D("10.0"),
            high=D("10.6"),
            low=D("9.7"),
            close=D("10.2"),
            volume=1000,
        )
        for i in range(count)
    )


def plan(day: date) -> TradePlan:
    opens = session(day).open
    return TradePlan(
        id=f"gap_and_go-{day}-AAA",
        trading_day=day,
        strategy="gap_and_go",
        symbol=symbol("AAA"),
        side=Side.LONG,
        rank=1,
        entry=D("10.00"),
        stop=D("9.75"),
        target=D("10.50"),
        qty=100,
        atr=D(1),
        or_high=D("9.99"),
        or_low=D("9.76"),
        window=EntryWindow(
            opens_at=opens + timedelta(minutes=5), closes_at=opens + timedelta(hours=1)
        ),
    )


T1 = closed(DAY1, "10.00", "10.50", 100, 6, 16, "2")  # +50, 10 minutes
T2 = closed(DAY2, "20.00", "19.80", 50, 31, 61, "-1")  # -10, 30 minutes


def result(benchmark: Benchmark | None) -> BacktestResult:
    first = performance(D(1000), [T1])
    second = performance(first.end_equity, [T2])
    reports = tuple(
        DailyReport(
            day=d, strategy="gap_and_go", candidates=1, plans=1, plans_rejected=0, performance=p
        )
        for d, p in ((DAY1, first), (DAY2, second))
    )
    return BacktestResult(
        sessions=(session(DAY1), session(DAY2)),
        reports=reports,
        start_equity=D(1000),
        trades=(
            TradeContext(
                day=DAY1, session=session(DAY1), trade=T1, plan=plan(DAY1), bars=bars(DAY1, 46)
            ),
            TradeContext(day=DAY2, session=session(DAY2), trade=T2, plan=None, bars=bars(DAY2, 91)),
        ),
        benchmark=benchmark,
        timezone=ZONE,
    )


SPY = Benchmark(symbol="SPY", first_open=D(100), closes=(D(101), D(99)), note="buy SPY")


def test_figures_worked_by_hand() -> None:
    figures = report_content(result(SPY))["strategy"]
    daily = [1050 / 1000 - 1, 1040 / 1050 - 1]

    assert figures["net_pnl"] == "40.00"
    assert figures["gross_pnl"] == "40.00"
    assert figures["profit_factor"] == "5.0000"  # 50 / 10
    assert figures["expectancy_r"] == "0.5000"  # (2 - 1) / 2
    assert figures["win_rate_pct"] == "50.0000"
    assert figures["exposure_pct"] == "5.1282"  # 10 + 30 of 780 minutes
    assert figures["avg_holding_minutes"] == "20.00"
    # end-of-day equity 1000 -> 1050 -> 1040: 10 below the peak, not recovered after 1 session
    assert (figures["max_drawdown"], figures["max_drawdown_pct"]) == ("10.00", "0.9524")
    assert figures["max_drawdown_sessions"] == 1
    sharpe = statistics.mean(daily) / statistics.stdev(daily) * math.sqrt(252)
    assert abs(float(figures["sharpe"]) - sharpe) < 1e-4
    cagr = 100 * ((1040 / 1000) ** (252 / 2) - 1)
    assert abs(float(figures["cagr_pct"]) - cagr) / cagr < 1e-6


def test_benchmark_is_bought_at_the_first_open() -> None:
    bench = report_content(result(SPY))["benchmark"]

    assert bench["figures"]["end_equity"] == "990.00"  # 1000 * 99 / 100
    assert bench["figures"]["max_drawdown"] == "20.00"  # 1010 -> 990
    assert report_content(result(None))["benchmark"] is None
    missing = Benchmark(symbol="SPY", first_open=None, closes=(), note="SPY is not in the data")
    assert report_content(result(missing))["benchmark"] == {
        "symbol": "SPY",
        "note": "SPY is not in the data",
        "figures": None,
    }


def test_groups_by_weekday_entry_time_and_r() -> None:
    content = report_content(result(None))

    assert [(g["key"], g["net_pnl"]) for g in content["by_weekday"]] == [
        ("Tuesday", "50.00"),
        ("Wednesday", "-10.00"),
    ]
    # entries fill in the bars starting 09:35 and 10:00 ET
    assert [g["key"] for g in content["by_entry_time"]] == ["09:30", "10:00"]
    assert [(b["from"], b["count"]) for b in content["r_distribution"]] == [
        ("-1.0", 1),
        ("-0.5", 0),
        ("0.0", 0),
        ("0.5", 0),
        ("1.0", 0),
        ("1.5", 0),
        ("2.0", 1),
    ]
    assert [r["drawdown"] for r in content["equity_curve"]] == ["0.00", "-10.00"]


def test_page_shows_every_figure_as_stored_and_draws_each_trade() -> None:
    content = report_content(result(SPY))
    page = report_html(content)

    cells = dict(re.findall(r'<td data-figure="([a-z_.]+)">([^<]*)</td>', page))
    assert cells == {
        **{f"strategy.{k}": shown(content["strategy"][k]) for k in content["figure_labels"]},
        **{
            f"benchmark.{k}": shown(content["benchmark"]["figures"][k])
            for k in content["figure_labels"]
        },
    }
    assert "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert page.count('class="candle"') == 46 + 91


def test_trade_chart_marks_the_range_levels_entry_and_exit() -> None:
    chart = report_content(result(None))["trades"][0]["chart"]

    svg = trade_chart(chart, ZONE)

    assert svg.count('class="candle"') == 46
    assert svg.count('class="opening-range"') == 1
    assert re.findall(r'data-level="(\w+)"', svg) == ["entry", "stop", "target"]
    assert re.findall(r'data-mark="(\w+)"', svg) == ["entry", "exit"]
    assert "<title>09:30 o 10 h 10.6 l 9.7 c 10.2 v 1000</title>" in svg


def test_trade_chart_without_bars_says_so() -> None:
    assert "no bars for this trade" in trade_chart({"symbol": "AAA", "candles": []}, ZONE)
