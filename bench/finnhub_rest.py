"""Benchmark of `FinnhubRest`'s two transports, side by side, against a local Finnhub.

The server (bench/finnhub_local.py) runs in its own process; the client runs here, on one asyncio
loop, through the whole adapter (budget, breaker, retries, parsing into `FinnhubQuote`): the only
difference between the sides is `transport`.
- reference: `transport="aiohttp"` (the default).
- value: `transport="finnhub-python"`: the official SDK (requests), each call in a worker thread
  (`asyncio.to_thread`, the loop's default executor).

The budget's windows are far above what the sides can ask, so it never waits. Two phases share
`--seconds`, half each side, in slices of about a second taken in turns ABBA (reference, value,
value, reference, ...) so the load of other processes falls on both alike:
- sequential: one `/quote` at a time; `p50_latency_ms` and `p99_latency_ms` per call.
- concurrent: 10 callers at once; `calls_per_s` and `cpu_per_call_us` (this process's CPU time,
  user + system, per call: steadier than calls/s on a shared machine).

Run: `.venv/bin/python bench/finnhub_rest.py [--seconds N] > results.jsonl`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from _common import emit, finnhub_local_process, note, percentile, quiet_logs

from fin_agent.adapters.finnhub.rest import FinnhubRest, FinnhubTransport
from fin_agent.adapters.vendor_http.rate_budget import RateBudget, RateWindow
from fin_agent.domain.values import symbol

TOKEN = "bench-token"  # noqa: S105 - the local server's key
REFERENCE: FinnhubTransport = "aiohttp"
VALUE: FinnhubTransport = "finnhub-python"
REFERENCE_NAME = "FinnhubRest on aiohttp (the default transport)"
CONCURRENCY = 10
SLICE_SECS = 1.0
SYMBOLS = [symbol(s) for s in ("AAPL", "MSFT", "NVDA", "AMD", "TSLA", "META", "AMZN", "GOOG")]


@dataclass
class Side:
    """One transport's client and what it measured."""

    transport: FinnhubTransport
    rest: FinnhubRest
    latencies_ms: list[float] = field(default_factory=list)
    calls: int = 0
    wall_secs: float = 0.0
    cpu_secs: float = 0.0


def client(rest_url: str, transport: FinnhubTransport) -> FinnhubRest:
    budget = RateBudget((RateWindow(max_calls=1_000_000, per_secs=1.0),), name=transport)
    return FinnhubRest(rest_url, TOKEN, budget, transport=transport)


async def sequential_slice(side: Side, secs: float) -> None:
    end = time.perf_counter() + secs
    i = 0
    while time.perf_counter() < end:
        started = time.perf_counter()
        await side.rest.quote_figures(SYMBOLS[i % len(SYMBOLS)])
        side.latencies_ms.append((time.perf_counter() - started) * 1000)
        i += 1


async def concurrent_slice(side: Side, secs: float) -> None:
    end = time.perf_counter() + secs
    done = 0

    async def caller(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < end:
            await side.rest.quote_figures(SYMBOLS[i % len(SYMBOLS)])
            done += 1
            i += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(CONCURRENCY)))
    side.cpu_secs += time.process_time() - cpu
    side.wall_secs += time.perf_counter() - wall
    side.calls += done


async def measure(rest_url: str, seconds: float) -> tuple[Side, Side, Side, Side]:
    """Both phases, ABBA; returns (sequential ref, sequential value, concurrent ref, ...)."""
    sides = {t: client(rest_url, t) for t in (REFERENCE, VALUE)}
    try:
        for rest in sides.values():  # warm-up: sessions, connections, threads
            for _ in range(20):
                await rest.quote_figures(SYMBOLS[0])
        out: list[Side] = []
        for run in (sequential_slice, concurrent_slice):
            ref, val = Side(REFERENCE, sides[REFERENCE]), Side(VALUE, sides[VALUE])
            slices = max(1, round(seconds / 2 / 2 / SLICE_SECS))  # per side, per phase
            for k in range(slices):
                order = (ref, val) if k % 2 == 0 else (val, ref)
                for side in order:
                    await run(side, SLICE_SECS)
            out += [ref, val]
        return out[0], out[1], out[2], out[3]
    finally:
        for rest in sides.values():
            await rest.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="measuring time in total (4 to 60, default 20)"
    )
    args = parser.parse_args()
    if not 4 <= args.seconds <= 60:
        parser.error("--seconds must be between 4 and 60")
    quiet_logs()
    with finnhub_local_process(TOKEN) as (_, where):
        rest_url = str(where["rest_url"])
        note(f"local Finnhub REST at {rest_url}; measuring {args.seconds:g} s")
        seq_ref, seq_val, con_ref, con_val = asyncio.run(measure(rest_url, args.seconds))

    def line(metric: str, unit: str, value: float, reference: float) -> None:
        emit(
            "finnhub_rest",
            metric,
            value,
            unit,
            reference=reference,
            reference_name=REFERENCE_NAME,
            value_name="FinnhubRest on finnhub-python (SDK in a worker thread)",
        )

    lat_ref, lat_val = sorted(seq_ref.latencies_ms), sorted(seq_val.latencies_ms)
    line("p50_latency_ms", "ms", percentile(lat_val, 50), percentile(lat_ref, 50))
    line("p99_latency_ms", "ms", percentile(lat_val, 99), percentile(lat_ref, 99))
    line(
        f"calls_per_s_{CONCURRENCY}_concurrent",
        "calls/s",
        con_val.calls / con_val.wall_secs,
        con_ref.calls / con_ref.wall_secs,
    )
    line(
        "cpu_per_call_us",
        "us/call",
        con_val.cpu_secs / con_val.calls * 1e6,
        con_ref.cpu_secs / con_ref.calls * 1e6,
    )
    emit(
        "finnhub_rest",
        "environment",
        None,
        None,
        reference_name=REFERENCE_NAME,
        cpu_count=os.cpu_count(),
        load_avg_1m=round(os.getloadavg()[0], 2),
        python=platform.python_version(),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        server="bench/finnhub_local.py (aiohttp) in its own process",
        concurrency=CONCURRENCY,
        calls={
            "sequential_reference": len(lat_ref),
            "sequential_value": len(lat_val),
            "concurrent_reference": con_ref.calls,
            "concurrent_value": con_val.calls,
        },
    )


if __name__ == "__main__":
    main()
