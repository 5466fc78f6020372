"""Benchmark of the live market path: trades from a local Finnhub through decoding and 1-minute
bars to `market.bars_closed` events on the bus, against a bare websockets loop, side by side.

The server (bench/finnhub_local.py) runs in its own process, so it does not share the client's
core; the client runs here, on one asyncio loop, against a redis-server of this run only.

- reference: a bare `websockets` loop: connect, subscribe, `recv()` and `json.loads` every frame,
  count the trades. No validation, no bars, no bus.
- project: `FinnhubTradeFeed` -> `MarketFeed` (`BarAggregator`) -> `RedisStreamsEventBus.publish`
  of one `BarsClosed` per minute; the minutes close as the trades move on (no clock timer).

Two phases share `--seconds` (half each), each split between the sides in slices taken in turn,
ABBA, so the load other processes put on a shared machine falls on both alike. Every slice is a
fresh connection (and, for the project, a fresh feed and aggregator) that the server starts
playing to as soon as it subscribes.
- throughput: the recorded AIG prints of 2013-10-10 (54,318 trades in 11,537 frames: the trades
  within 100 ms of recorded time, at most 50, 4.7 a frame), sent as fast as the socket takes them.
  `trades_per_s` is the trades of the day over the time from the server sending the first frame
  to the client having handled the last (project: its last minute published on the bus).
- 1k: the Lean minute bars of seven symbols (each symbol's days laid side by side) as four trades
  per bar, one frame per minute (10.4 trades), at 1,000 frames/s: every frame closes the previous
  minute, so every frame puts one event (2.6 bars) on the bus. `p99_latency_1k` is from the
  server sending the frame (its `time.perf_counter()`: CLOCK_MONOTONIC, shared by the processes)
  to `publish()` returning for the event it closed (reference: to `json.loads` returning for the
  frame).
`cpu_per_trade` is this process's CPU time per trade in the throughput phase: the ratio that holds
when other processes compete for the cores.

Run: `.venv/bin/python bench/feed.py [--seconds N] [--redis plain|embedded] > results.jsonl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from _common import (
    RedisInfo,
    emit,
    environment,
    finnhub_local_process,
    note,
    parse_args,
    percentile,
    quiet_logs,
    throwaway_redis,
)
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.finnhub.feed import FinnhubFeedConfig, FinnhubTradeFeed
from fin_agent.adapters.live.bar_aggregator import BarAggregator
from fin_agent.adapters.memory import FixedClock
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.streams import StreamsSettings
from fin_agent.app.live.market_feed import MarketFeed, MarketFeedConfig
from fin_agent.domain.events import BarsClosed, DomainEvent

BENCH = "feed"
REFERENCE_NAME = "bare websockets recv() + json.loads loop"
TOKEN = "bench-token"  # noqa: S105 - the local server's test key
THROUGHPUT_TAPE = {"tape": "ticks", "day": "2013-10-10", "window_ms": 100, "max_trades": 50}
LATENCY_RATE = 1_000  # frames/s
LATENCY_TAPE = {"tape": "bars", "align_to": "2013-10-07", "minute_frames": True}
SHARES = (("throughput", 0.5), ("1k", 0.5))
SLICE_SECS = {"throughput": 1.0, "1k": 1.0}  # about; a throughput slice is one pass of the day
RAMP_SECS = 0.1  # 1k slices: samples of the first 0.1 s are not kept
MAX_QUEUE = 64  # websockets frames buffered, both sides
TARGET_TRADES_PER_S = 20_000
TARGET_RATIO = 0.5
TARGET_P99_1K_MS = 5.0


# -- the server process --------------------------------------------------------------------------


@dataclass
class Server:
    """bench/finnhub_local.py in a process of its own, driven over HTTP."""

    proc: subprocess.Popen[bytes]
    ws_url: str
    control: str
    http: aiohttp.ClientSession

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.http.post(f"{self.control}/{path}", json=body or {}) as response:
            response.raise_for_status()
            return await response.json()

    async def get(self, path: str, **params: Any) -> Any:
        async with self.http.get(f"{self.control}/{path}", params=params) as response:
            response.raise_for_status()
            return await response.json()

    async def latest_connection(self) -> int:
        state = await self.get("state")
        return max(int(c["id"]) for c in state["connections"])

    async def sent_log(self, conn_id: int) -> list[tuple[int, float]]:
        return [(int(t), float(s)) for t, s in await self.get("sent", id=conn_id)]


@contextlib.asynccontextmanager
async def local_finnhub() -> AsyncIterator[Server]:
    with finnhub_local_process(TOKEN) as (proc, where):
        async with aiohttp.ClientSession() as http:
            yield Server(
                proc,
                where["ws_url"],
                where["ws_url"].replace("ws://", "http://") + "/_control",
                http,
            )


# -- the two sides ---------------------------------------------------------------------------------


class TimingBus:
    """The real bus, noting when each minute's event was accepted (publish returned)."""

    def __init__(self, inner: RedisStreamsEventBus) -> None:
        self.inner = inner
        self.published_at: dict[int, float] = {}  # minute start (ms) -> perf_counter

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        await self.inner.publish(events)
        now = time.perf_counter()
        for event in events:
            if isinstance(event, BarsClosed):
                start = event.bars[0].start
                self.published_at[int(start.timestamp() * 1000)] = now

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class SliceResult:
    """One side's slice: trades handled over the seconds, latencies (ms), what went wrong."""

    trades: int = 0
    secs: float = 0.0
    cpu_secs: float = 0.0  # this process's CPU time over the same span
    frames: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    events: int = 0
    malformed: int = 0
    late: int = 0


async def bare_throughput(server: Server, symbols: list[str], total: int) -> SliceResult:
    """The reference: recv + json.loads until `total` trades were counted."""
    async with connect(server.ws_url + f"/?token={TOKEN}", max_queue=MAX_QUEUE) as ws:
        for name in symbols:
            await ws.send(json.dumps({"type": "subscribe", "symbol": name}))
        conn_id = await server.latest_connection()
        count = frames = 0
        loads = json.loads
        recv = ws.recv
        cpu = time.process_time()
        while count < total:
            message = loads(await recv())
            if message.get("type") == "trade":
                count += len(message["data"])
                frames += 1
        done = time.perf_counter()
        cpu = time.process_time() - cpu
    first_sent = (await server.sent_log(conn_id))[0][1]
    return SliceResult(trades=count, secs=done - first_sent, cpu_secs=cpu, frames=frames)


def project_pipeline(
    ws_url: str, redis: Redis, prefix: str
) -> tuple[FinnhubTradeFeed, MarketFeed, TimingBus]:
    bus = TimingBus(
        RedisStreamsEventBus(redis, EventCodec(default_registry()), StreamsSettings(prefix=prefix))
    )
    feed = FinnhubTradeFeed(
        FinnhubFeedConfig(url=ws_url, stale_after_secs=None, max_queued_frames=MAX_QUEUE), TOKEN
    )
    market = MarketFeed(
        feed,
        bus,
        clock=FixedClock(datetime(2013, 10, 10, 20, tzinfo=UTC)),
        aggregator=BarAggregator(),
        config=MarketFeedConfig(flush_every_secs=None),
    )
    return feed, market, bus


async def project_throughput(
    server: Server, redis: Redis, symbols: list[str], total: int, prefix: str
) -> SliceResult:
    """The project: feed -> aggregator -> bus until `total` trades, then the last minute out."""
    feed, market, _ = project_pipeline(server.ws_url, redis, prefix)
    market.set_watchlist(symbols)
    stop = asyncio.Event()
    task = asyncio.create_task(market.run(stop))
    try:
        # polled, not signalled: the measured pipeline stays exactly as the agent runs it
        while feed.stats.frames == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        cpu = time.process_time()
        while feed.stats.trades < total:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        market.close_all()
        await market.wait_published(60)
        done = time.perf_counter()
        cpu = time.process_time() - cpu
        conn_id = await server.latest_connection()
    finally:
        stop.set()
        await task
    first_sent = (await server.sent_log(conn_id))[0][1]
    stats = market.stats
    return SliceResult(
        trades=stats.feed.trades,
        secs=done - first_sent,
        cpu_secs=cpu,
        frames=stats.feed.frames,
        events=stats.events_published,
        malformed=stats.feed.malformed,
        late=stats.bars.late,
    )


async def bare_latency(server: Server, symbols: list[str], secs: float) -> SliceResult:
    """The reference at 1k frames/s: latency from the server's send to json.loads returning."""
    loaded: dict[int, float] = {}
    async with connect(server.ws_url + f"/?token={TOKEN}", max_queue=MAX_QUEUE) as ws:
        for name in symbols:
            await ws.send(json.dumps({"type": "subscribe", "symbol": name}))
        conn_id = await server.latest_connection()
        deadline = time.perf_counter() + RAMP_SECS + secs + 0.05
        loads, recv, perf = json.loads, ws.recv, time.perf_counter
        while perf() < deadline:
            message = loads(await recv())
            if message.get("type") == "trade":
                loaded[message["data"][0]["t"]] = perf()
    sent = await server.sent_log(conn_id)
    first = sent[0][1] + RAMP_SECS
    latencies = [
        (loaded[t] - at) * 1000
        for t, at in sent
        if at >= first and at <= first + secs and t in loaded
    ]
    return SliceResult(trades=0, secs=secs, frames=len(loaded), latencies_ms=latencies)


async def project_latency(
    server: Server, redis: Redis, symbols: list[str], secs: float, prefix: str
) -> SliceResult:
    """The project at 1k frames/s: from the send of the frame that closed a minute to its event
    being accepted by the bus."""
    feed, market, bus = project_pipeline(server.ws_url, redis, prefix)
    market.set_watchlist(symbols)
    stop = asyncio.Event()
    task = asyncio.create_task(market.run(stop))
    try:
        while feed.stats.frames == 0:  # noqa: ASYNC110 - polled, see project_throughput
            await asyncio.sleep(0.001)
        conn_id = await server.latest_connection()
        await asyncio.sleep(RAMP_SECS + secs + 0.05)
        await market.wait_published(10)
    finally:
        stop.set()
        await task
    sent = await server.sent_log(conn_id)
    first = sent[0][1] + RAMP_SECS
    latencies = []
    for (minute_t, _), (_, closer_sent) in itertools.pairwise(sent):
        if not first <= closer_sent <= first + secs:
            continue
        published = bus.published_at.get(minute_t - minute_t % 60_000)
        if published is not None:
            latencies.append((published - closer_sent) * 1000)
    stats = market.stats
    return SliceResult(
        trades=stats.feed.trades,
        secs=secs,
        frames=stats.feed.frames,
        latencies_ms=latencies,
        events=stats.events_published,
        malformed=stats.feed.malformed,
        late=stats.bars.late,
    )


# -- phases --------------------------------------------------------------------------------------


@dataclass
class Phase:
    """Both sides of one phase: their slices."""

    slices: dict[str, list[SliceResult]] = field(
        default_factory=lambda: {"reference": [], "project": []}
    )
    info: dict[str, Any] = field(default_factory=dict)

    def rate(self, side: str) -> float:
        slices = self.slices[side]
        secs = sum(s.secs for s in slices)
        return sum(s.trades for s in slices) / secs if secs else math.nan

    def cpu_us_per_trade(self, side: str) -> float:
        slices = self.slices[side]
        trades = sum(s.trades for s in slices)
        return sum(s.cpu_secs for s in slices) / trades * 1e6 if trades else math.nan

    def pct(self, side: str, q: float) -> float:
        return percentile(sorted(x for s in self.slices[side] for x in s.latencies_ms), q)

    def total(self, side: str, what: str) -> int:
        return sum(int(getattr(s, what)) for s in self.slices[side])


def _order(i: int) -> tuple[str, str]:
    return ("reference", "project") if i % 2 == 0 else ("project", "reference")


async def throughput_phase(server: Server, redis: Redis, per_side_secs: float) -> Phase:
    info = await server.post("autoplay", {**THROUGHPUT_TAPE, "frames_per_s": None})
    phase = Phase(info=info)
    symbols, total = info["symbols"], info["trades"]
    note(f"  throughput: {total} trades in {info['frames']} frames a pass, {symbols}")
    await bare_throughput(server, symbols, total)  # warm-up, both sides
    await project_throughput(server, redis, symbols, total, "warm")
    i = 0
    while min(sum(s.secs for s in phase.slices[side]) for side in phase.slices) < per_side_secs:
        for side in _order(i):
            if side == "reference":
                result = await bare_throughput(server, symbols, total)
            else:
                result = await project_throughput(server, redis, symbols, total, f"t{i}")
            phase.slices[side].append(result)
            note(
                f"  throughput {i + 1:>3} {side:>9}: {result.trades / result.secs:9.0f} trades/s "
                f"({result.frames / result.secs:7.0f} frames/s), CPU "
                f"{result.cpu_secs / result.trades * 1e6:5.2f} us/trade"
            )
        i += 1
    return phase


async def latency_phase(server: Server, redis: Redis, per_side_secs: float) -> Phase:
    slices = max(2, 2 * round(per_side_secs / (2 * SLICE_SECS["1k"])))
    slice_secs = per_side_secs / slices
    bars = await server.post("autoplay", {**LATENCY_TAPE, "frames_per_s": LATENCY_RATE})
    passes = math.ceil(LATENCY_RATE * (slice_secs + RAMP_SECS + 1) / bars["frames"])
    info = await server.post(
        "autoplay", {**LATENCY_TAPE, "frames_per_s": LATENCY_RATE, "passes": passes}
    )
    phase = Phase(info=info)
    symbols = info["symbols"]
    note(
        f"  1k: {info['frames']} minute frames of {info['trades'] / info['frames']:.1f} trades "
        f"({symbols}), {slices} slices of {slice_secs:.2f} s a side"
    )
    await bare_latency(server, symbols, 0.3)  # warm-up, both sides
    await project_latency(server, redis, symbols, 0.3, "warm")
    for i in range(slices):
        for side in _order(i):
            if side == "reference":
                result = await bare_latency(server, symbols, slice_secs)
            else:
                result = await project_latency(server, redis, symbols, slice_secs, f"l{i}")
            phase.slices[side].append(result)
            lat = sorted(result.latencies_ms)
            note(
                f"  1k {i + 1:>3}/{slices} {side:>9}: {len(lat)} samples, p50 "
                f"{percentile(lat, 50):6.2f} ms, p99 {percentile(lat, 99):6.2f} ms"
            )
    return phase


def report(phases: dict[str, Phase], redis_info: RedisInfo, seconds: float) -> int:
    thr, lat = phases["throughput"], phases["1k"]
    rows = [
        ("trades_per_s", thr.rate("project"), "trades/s", thr.rate("reference")),
        (
            "cpu_per_trade",
            thr.cpu_us_per_trade("project"),
            "us/trade",
            thr.cpu_us_per_trade("reference"),
        ),
        ("p50_latency_1k", lat.pct("project", 50), "ms", lat.pct("reference", 50)),
        ("p99_latency_1k", lat.pct("project", 99), "ms", lat.pct("reference", 99)),
        ("p999_latency_1k", lat.pct("project", 99.9), "ms", lat.pct("reference", 99.9)),
    ]
    for metric, value, unit, reference in rows:
        emit(BENCH, metric, value, unit, reference=reference, reference_name=REFERENCE_NAME)
    malformed = thr.total("project", "malformed") + lat.total("project", "malformed")
    late = thr.total("project", "late") + lat.total("project", "late")
    emit(BENCH, "malformed_frames", malformed, "frames", reference_name=REFERENCE_NAME)
    emit(BENCH, "late_trades", late, "trades", reference_name=REFERENCE_NAME)
    emit(
        BENCH,
        "environment",
        None,
        None,
        reference_name=REFERENCE_NAME,
        **environment(
            redis_info,
            measuring_secs=seconds,
            throughput_tape={**THROUGHPUT_TAPE, **thr.info},
            throughput_slices_per_side=len(thr.slices["project"]),
            trades_per_frame=round(thr.info["trades"] / thr.info["frames"], 2),
            latency_tape={**LATENCY_TAPE, "frames": lat.info["frames"]},
            latency_frames_per_s=LATENCY_RATE,
            latency_trades_per_frame=round(lat.info["trades"] / lat.info["frames"], 2),
            latency_samples={
                side: sum(len(s.latencies_ms) for s in lat.slices[side]) for side in lat.slices
            },
            events_published=thr.total("project", "events") + lat.total("project", "events"),
            server="bench/finnhub_local.py (aiohttp) in its own process",
        ),
    )
    rate, ref_rate = thr.rate("project"), thr.rate("reference")
    p99 = lat.pct("project", 99)
    met = {
        "rate": rate >= TARGET_TRADES_PER_S,
        "ratio": rate / ref_rate >= TARGET_RATIO,
        "p99": p99 <= TARGET_P99_1K_MS,
    }
    cpu, ref_cpu = thr.cpu_us_per_trade("project"), thr.cpu_us_per_trade("reference")
    note(
        "targets:\n"
        f"  {rate:.0f} trades/s (>= {TARGET_TRADES_PER_S}): {_verdict(met['rate'])}\n"
        f"  {rate / ref_rate:.0%} of the bare loop's {ref_rate:.0f} trades/s "
        f"(>= {TARGET_RATIO:.0%}): {_verdict(met['ratio'])}; in CPU time of this process "
        f"{cpu:.2f} vs {ref_cpu:.2f} us/trade = {ref_cpu / cpu:.0%}\n"
        f"  p99 at 1k frames/s {p99:.2f} ms (<= {TARGET_P99_1K_MS:g} ms; bare "
        f"{lat.pct('reference', 99):.2f} ms): {_verdict(met['p99'])}\n"
        f"  malformed {malformed}, late {late}"
    )
    return 1 if malformed or late else 0


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


async def main_async(redis_info: RedisInfo, seconds: float) -> int:
    note(f"feed benchmark: {seconds:g} s of measuring; {redis_info.description}")
    redis = Redis.from_url(redis_info.url, socket_timeout=10.0, socket_connect_timeout=5.0)
    try:
        async with local_finnhub() as server:
            phases: dict[str, Phase] = {}
            for name, share in SHARES:
                per_side = seconds * share / 2
                run = throughput_phase if name == "throughput" else latency_phase
                phases[name] = await run(server, redis, per_side)
    finally:
        await redis.aclose()
    return report(phases, redis_info, seconds)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "feed benchmark", min_seconds=4.0)
    quiet_logs()
    with throwaway_redis(args.redis) as redis_info:
        return asyncio.run(main_async(redis_info, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
