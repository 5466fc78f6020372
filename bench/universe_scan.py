"""The whole market before the open: a 5,000-symbol scan within Alpaca's 200 calls a minute.

`.venv/bin/python bench/universe_scan.py [--symbols 5000]` runs the live scan (`LiveScan.run`,
the agent's own code, with `market.universe_source: alpaca` as bootstrap wires it) against the
local Alpaca server in its own process (`--universe N`, counting calls by arrival, 429 past 200 a
minute), with the daily bar cache in DuckDB and in PostgreSQL (FIN_AGENT_TEST_POSTGRES, a
throwaway schema), each cold (empty cache) then warm (the same cache, a fresh agent). It prints
the scan's seconds against the one-minute bound, the Alpaca calls of each run and the most the
server counted in any 60 s. Reference, in the same run: the old path, one Finnhub quote per
symbol within the shipped 60/min budget, timed on a sample of quotes at the local Finnhub and
projected to the same universe (it is budget-bound: 5,000 quotes need 5,000 / 60 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _common import emit, finnhub_local_process, note, quiet_logs

from fin_agent.adapters.alpaca_data.client import AlpacaDataConfig, AlpacaMarketData
from fin_agent.adapters.exchange_calendar import ExchangeCalendar
from fin_agent.adapters.finnhub.rest import FinnhubRest
from fin_agent.adapters.live.market import LiveMarket
from fin_agent.adapters.memory import FixedClock, InMemoryNews
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.app.bootstrap.live import whole_market_parts
from fin_agent.app.bootstrap.store import open_store
from fin_agent.app.config.settings import load_settings
from fin_agent.app.live.scan import LiveScan
from fin_agent.domain.values import Symbol
from fin_agent.ports.store import Store

BENCH = "universe_scan"
REPO = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
DAY = date(2026, 12, 4)
KEY, SECRET, FINNHUB_KEY = "bench-key", "bench-secret", "bench-finnhub"
POSTGRES = os.environ.get("FIN_AGENT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SAMPLE_QUOTES = 20


@contextmanager
def alpaca_local(symbols: int) -> Iterator[str]:
    """The local Alpaca server in its own process, so it does not share the scan's core."""
    env = {**os.environ, "ALPACA_LOCAL_KEY_ID": KEY, "ALPACA_LOCAL_SECRET_KEY": SECRET}
    args = ["-m", "fin_agent.adapters.broker.alpaca_local", "--port", "0", "--universe",
            str(symbols), "--day", str(DAY), "--rate-limit-per-min", "200"]  # fmt: skip
    port = _free_port()
    args[3] = str(port)
    proc = subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if raw.startswith(b"alpaca-local"):
                break
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def counts(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/_local/counts") as answer:  # noqa: S310 - local
        found: dict[str, Any] = json.loads(answer.read())
        return found


async def scan_once(store: Store, base: str) -> tuple[float, int, int]:
    """One agent's whole-market scan on `store`'s cache: seconds, symbols scanned, candidates."""
    settings = load_settings(REPO / "config.yaml", environ={})
    rules = settings.strategy().scan
    calendar = ExchangeCalendar(start=date(2025, 1, 1), end=date(2027, 12, 31))
    budget = RateBudget([RateWindow(max_calls=200, per_secs=60.0)], name="alpaca", margin_secs=1.0)
    alpaca = AlpacaMarketData(
        AlpacaDataConfig(trading_url=base, data_url=base), key_id=KEY, secret_key=SECRET,
        budget=budget,
    )  # fmt: skip
    holder: list[LiveMarket] = []
    clock = FixedClock(datetime.combine(DAY, clock_time(8, 59), NY))
    # The agent's own wiring of the listed universe, its history and its snapshots.
    whole = whole_market_parts(settings, alpaca, store, calendar, lambda: holder[0].universe)
    market = LiveMarket(
        universe=[],
        finnhub=None,  # type: ignore[arg-type]  # the snapshots answer
        daily_sources=[alpaca],
        cache=store.daily_bar_cache(),
        calendar=calendar,
        clock=clock,
        **whole,
    )
    holder.append(market)
    scan = LiveScan(
        market=market, news=InMemoryNews(), rules=rules, clock=clock,
        quote_calls_per_minute=200, daily_calls_per_minute=200,
    )  # fmt: skip
    started = time.monotonic()
    try:
        outcome = await scan.run(DAY, datetime.combine(DAY, clock_time(9), NY), [])
    finally:
        await alpaca.close()
    return time.monotonic() - started, len(outcome.snapshot.symbols), len(outcome.result.candidates)


async def reference_secs(symbols: int) -> tuple[float, float]:
    """The old path: the sample's seconds, and the projection to `symbols` quotes."""
    with finnhub_local_process(FINNHUB_KEY) as (_, urls):
        settings = load_settings(REPO / "config.yaml", environ={})
        windows = [RateWindow(max_calls=w.max_calls, per_secs=w.per_secs)
                   for w in settings.finnhub.windows]  # fmt: skip
        budget = RateBudget(
            windows, name="finnhub", margin_secs=settings.finnhub.budget_margin_secs
        )
        rest = FinnhubRest(urls["rest_url"], FINNHUB_KEY, budget)
        started = time.monotonic()
        try:
            for i in range(SAMPLE_QUOTES):
                await rest.quote_figures(Symbol(f"Q{i}"))
        finally:
            await rest.close()
        sample = time.monotonic() - started
    per_quote = max(sample / SAMPLE_QUOTES, 60.0 / budget.calls_per_minute)
    return sample, per_quote * symbols


async def run(symbols: int) -> None:
    sample, projected = await reference_secs(symbols)
    note(f"reference: {SAMPLE_QUOTES} Finnhub quotes in {sample:.2f} s; {symbols} projected "
         f"{projected:.0f} s")  # fmt: skip
    with alpaca_local(symbols) as base, tempfile.TemporaryDirectory() as folder:
        for kind in ("duckdb", "timescale"):
            tag = uuid.uuid4().hex[:8]
            env = {
                "FIN_AGENT_DATA_DIR": folder,
                "FIN_AGENT_STORE__URL": POSTGRES,
                "FIN_AGENT_STORE__SCHEMA_NAME": f"bench_universe_{tag}",
                "FIN_AGENT_STORE__DUCKDB_FILE": f"universe-{tag}.duckdb",
            }
            settings = load_settings(REPO / "config.yaml", environ=env)
            try:
                store = await open_store(settings, kind)
                await store.migrate()
            except Exception as exc:
                note(f"{kind}: not measured ({exc})")
                continue
            name = "postgresql" if kind == "timescale" else kind
            try:
                for phase in ("cold", "warm"):
                    before = counts(base)
                    secs, scanned, candidates = await scan_once(store, base)
                    after = counts(base)
                    calls = after["calls_total"] - before["calls_total"]
                    note(f"{name} {phase}: {secs:.2f} s, {scanned} scanned, {calls} calls")
                    emit(BENCH, f"scan_secs_{name}_{phase}", secs, "s", reference=projected,
                         reference_name=f"one Finnhub quote per symbol at the shipped 60/min, "
                         f"{SAMPLE_QUOTES}-quote sample projected to {symbols}",
                         bound_secs=60, symbols_listed=symbols, symbols_scanned=scanned,
                         candidates=candidates, alpaca_calls=calls)  # fmt: skip
            finally:
                await store.close()
        final = counts(base)
        emit(BENCH, "alpaca_calls_max_per_60s", final["max_calls_per_60s"], "calls",
             limit=200, rate_limited=final["rate_limited"], calls=final["calls"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--symbols", type=int, default=5000, help="listed symbols (default 5000)")
    args = parser.parse_args()
    quiet_logs()
    asyncio.run(run(args.symbols))


if __name__ == "__main__":
    main()
