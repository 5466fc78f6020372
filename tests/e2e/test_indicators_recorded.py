"""The indicators on the recorded minute bars of ../shared/data against TA-Lib (and VWAP against
numpy), and the entry confirmations on the recorded week: refusals recorded, plans left armed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import talib

from fin_agent.adapters.files.bar_files import BarFileSpec, read_bar_file
from fin_agent.adapters.files.replay import load_replay
from fin_agent.app.bootstrap import build_replay, running
from fin_agent.app.config.settings import load_settings
from fin_agent.app.runner import run_sessions
from fin_agent.domain.events import DomainEvent, OrderPlaced, PlanExpired, PlanRejected
from fin_agent.domain.report import DailyReport
from fin_agent.domain.technicals import Series, bollinger, ema, macd, rsi, sma, vwap
from fin_agent.domain.values import Bar

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parents[2]
DAILY = "av2019_daily_24sym.csv.gz"
MINUTES = "av2019_1min_24sym.csv.gz"
SYMBOLS = ("AAPL", "BAC", "MU", "TSLA")


def same(ours: Series, reference: np.ndarray) -> None:
    mine = np.array([np.nan if v is None else float(v) for v in ours])
    assert np.array_equal(np.isnan(mine), np.isnan(reference))
    known = ~np.isnan(reference)
    assert np.allclose(mine[known], reference[known], rtol=1e-9, atol=1e-6)


@pytest.fixture(scope="module")
def sessions(shared_data: Path) -> list[list[Bar]]:
    """Each symbol's regular-session minutes of each recorded day."""
    bars = read_bar_file(shared_data / MINUTES).intraday
    found: dict[tuple[str, date], list[Bar]] = {}
    for bar in bars:
        if bar.symbol in SYMBOLS:
            found.setdefault((bar.symbol, bar.start.date()), []).append(bar)
    return [sorted(day, key=lambda b: b.start) for _, day in sorted(found.items())]


def test_indicators_match_talib_on_recorded_minutes(sessions: list[list[Bar]]) -> None:
    assert len(sessions) == len(SYMBOLS) * 5
    for bars in sessions:
        closes = [b.close for b in bars]
        array = np.array([float(c) for c in closes])
        same(sma(closes, 20), talib.SMA(array, 20))
        same(ema(closes, 9), talib.EMA(array, 9))
        same(rsi(closes, 14), talib.RSI(array, 14))
        upper, _, lower = talib.BBANDS(array, 20, 2.0, 2.0)
        bands = bollinger(closes, 20, Decimal(2))
        same(bands.upper, upper)
        same(bands.lower, lower)
        line = talib.EMA(array, 12) - talib.EMA(array, 26)
        same(macd(closes).line, line)


def test_vwap_matches_numpy_on_recorded_minutes(sessions: list[list[Bar]]) -> None:
    for bars in sessions:
        typical = np.array([(float(b.high) + float(b.low) + float(b.close)) / 3 for b in bars])
        volume = np.array([float(b.volume) for b in bars])
        reference = np.cumsum(typical * volume) / np.cumsum(volume)
        same(vwap(bars), reference)


async def run_week(shared_data: Path) -> tuple[list[DailyReport], list[DomainEvent]]:
    settings = load_settings(REPO / "config.yaml")
    market = load_replay([shared_data / DAILY, shared_data / MINUTES], BarFileSpec()).market_data
    container = await build_replay(settings, market)
    days = [container.calendar.session(date(2019, 2, d)) for d in range(11, 16)]
    async with running(container):
        reports = await run_sessions(container, [d for d in days if d], Decimal(100_000))
        events = [e for r in reports for e in await container.store.events(day=r.day)]
    return reports, events


@pytest.mark.asyncio
async def test_relative_volume_confirmation_refuses_with_its_reason_and_leaves_plans_armed(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIN_AGENT_SCAN__GAP_MIN_PCT", "1")
    plain, _ = await run_week(shared_data)
    monkeypatch.setenv("FIN_AGENT_PLAN__CONFIRMATIONS__RELATIVE_VOLUME_MIN", "5")

    confirmed, events = await run_week(shared_data)

    refusals = [e for e in events if isinstance(e, PlanRejected)]
    assert {r.reason for r in refusals} == {"confirmation:relative_volume_min"}
    assert sorted(r.plan_id for r in refusals) == [
        "gap_and_go-2019-02-12-JPM",
        "gap_and_go-2019-02-12-MU",
        "gap_and_go-2019-02-12-TSLA",
        "gap_and_go-2019-02-14-VXXB",
        "gap_and_go-2019-02-15-BAC",
    ]
    # announced once each; the plans stay armed and expire at the deadline (no cancel)
    expired = {e.plan_id for e in events if isinstance(e, PlanExpired)}
    entered = {e.order.client_order_id for e in events if isinstance(e, OrderPlaced)}
    assert {r.plan_id for r in refusals} <= expired - entered
    # BAC 2019-02-15 by hand from the files: its 5 opening minutes against 5/390 of its ADV20
    minutes = read_bar_file(shared_data / MINUTES).intraday
    opening = [
        b.volume
        for b in minutes
        if b.symbol == "BAC"
        and b.start.date() == date(2019, 2, 15)
        and b.start.hour == 14
        and 30 <= b.start.minute < 35
    ]
    daily = [
        b.volume
        for b in read_bar_file(shared_data / DAILY).daily
        if b.symbol == "BAC" and b.session < date(2019, 2, 15)
    ][-20:]
    by_hand = Decimal(sum(opening)) / (Decimal(sum(daily)) / 20 * 5 / 390)
    [bac] = [r for r in refusals if r.symbol == "BAC"]
    assert bac.detail.startswith(f"relative volume {by_hand:.2f} below 5 ")
    plain_trades = {t.plan_id for r in plain for t in r.performance.trades}
    kept = {t.plan_id for r in confirmed for t in r.performance.trades}
    assert kept == plain_trades - {r.plan_id for r in refusals}
