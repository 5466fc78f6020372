"""Benchmark of `RedisStreamsEventBus` against a bare redis-py loop, side by side, on one Redis.

Both sides run in this process on one asyncio loop (producer and consumer together, as in the
agent), against a redis-server started for this run only, and carry the same realistic entries:
`market.bars_closed` events with a few bars, about 0.9 kB on the wire.

- reference: a bare redis-py loop. The producer XADDs pre-encoded envelopes (the codec's output
  for the same event, only the id differs) in pipelines; the consumer does XREADGROUP (COUNT,
  BLOCK) and one XACK per batch, with the bus's own read_count and block_ms.
- project: `RedisStreamsEventBus` with `EventCodec`: `publish()` of real `BarsClosed` events in
  batches, one group subscribed to them with a handler that notes the receive time.

Phases, each run reference/project then project/reference (ABBA) on fresh streams:
- throughput: the producer publishes batches of 100 as fast as it can while at most 5,000 events
  are published and not yet handled (so the consumer keeps up); `throughput_max` is the events
  handled per second, end to end, over the measuring window.
- 1k and 10k: a paced producer offers 1,000 events/s (10 every 10 ms) or 10,000 events/s (10
  every 1 ms), catching up when late; latency is from the start of the publish call to the
  handler, per event, with the send time kept in a side dict keyed by event id.

`lost` (published, never handled after a drain) and `duplicated` (handled more than once) count
every project event of the run. Exits 1 when anything was lost or duplicated (either side).

Run: `.venv/bin/python bench/bus.py [--seconds N] [--redis plain|embedded] > results.jsonl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from _common import (
    RedisInfo,
    emit,
    environment,
    note,
    parse_args,
    percentile,
    quiet_logs,
    throwaway_redis,
)
from redis.asyncio import Redis

from fin_agent.adapters.event_codec import EventCodec, default_registry
from fin_agent.adapters.redis_bus import RedisStreamsEventBus
from fin_agent.adapters.redis_streams import BusCounters, StreamsSettings
from fin_agent.domain.errors import DeadlineError
from fin_agent.domain.events import BarsClosed, DomainEvent
from fin_agent.domain.values import Bar, Symbol

BENCH = "bus"
REFERENCE_NAME = "bare redis-py XADD/XREADGROUP/XACK loop"
GROUP = "bench"
CONSUMER = "bench-consumer"
SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "AMD")
MAX_BATCH = 100  # events per publish() / pipeline when flat out, and the most a catch-up sends
FLOW_WINDOW = 5_000  # throughput phase: at most this many events published and not yet handled
PACED = {"1k": (1_000, 0.010), "10k": (10_000, 0.001)}  # offered events/s, tick (s)
SHARES = (("throughput", 0.3), ("1k", 0.5), ("10k", 0.2))  # of --seconds, split by side
WARMUP_SECS = {"throughput": 0.75, "1k": 0.5, "10k": 0.5}
DRAIN_TIMEOUT_SECS = 120.0
TARGET_RATIO = 0.5
TARGET_P99_1K_MS = 5.0

SETTINGS = StreamsSettings()  # the bus defaults: read_count, block_ms, socket timeout


class Pool:
    """Event ids and events made ahead of the measurement (ids are reused on fresh streams)."""

    def __init__(self) -> None:
        start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
        self.day = date(2024, 1, 2)
        self.occurred_at = start + timedelta(minutes=1)
        self.bars = tuple(
            Bar(
                symbol=Symbol(name),
                start=start,
                open=Decimal("187.12") + i,
                high=Decimal("187.65") + i,
                low=Decimal("186.98") + i,
                close=Decimal("187.41") + i,
                volume=12_400 + 37 * i,
            )
            for i, name in enumerate(SYMBOLS)
        )
        self.ids: list[str] = []
        self.events: list[BarsClosed] = []

    def ensure(self, count: int) -> None:
        """Make events up to `count` (a uuid5 id each: about 10 µs an event)."""
        for n in range(len(self.ids), count):
            event_id = BarsClosed.id_for(f"bench:{n}")
            self.ids.append(event_id)
            self.events.append(
                BarsClosed(
                    id=event_id, occurred_at=self.occurred_at, trading_day=self.day, bars=self.bars
                )
            )


class Tracker:
    """What one run published and handled: send and first-receive times by event id."""

    def __init__(self, window: int | None) -> None:
        self.sent: dict[str, float] = {}
        self.received: dict[str, float] = {}
        self.duplicated: set[str] = set()
        self.published = 0
        self.handled = 0
        self.window = window
        self.room = asyncio.Event()
        self.room.set()

    def on_receive(self, event_id: str) -> None:
        """The handler's work: note the first receive time, count repeats, reopen the window."""
        now = time.perf_counter()
        if event_id in self.received:
            self.duplicated.add(event_id)
        else:
            self.received[event_id] = now
        self.handled += 1
        if (
            self.window is not None
            and not self.room.is_set()
            and self.published - self.handled <= self.window // 2
        ):
            self.room.set()


class Side(Protocol):
    """One contender: sets up its streams, sends events `pool[first:first+count]`, drains."""

    name: str

    async def start(self, tracker: Tracker) -> None: ...

    async def send(self, first: int, count: int) -> None: ...

    async def drain(self, timeout_secs: float) -> bool: ...

    async def close(self) -> None: ...


def _client(url: str) -> Redis:
    """A client configured as the agent's (bootstrap): socket timeout longer than BLOCK."""
    return Redis.from_url(
        url, socket_timeout=SETTINGS.socket_timeout_secs, socket_connect_timeout=5.0
    )


class BareLoop:
    """The reference: XADD pre-encoded envelopes in pipelines; XREADGROUP + XACK per batch."""

    name = "reference"

    def __init__(self, url: str, pool: Pool, template: dict[str, str], prefix: str) -> None:
        self._redis = _client(url)
        self._pool = pool
        self._template = template
        self._stream = f"{prefix}:market"
        self._task: asyncio.Task[None] | None = None
        self._tracker: Tracker | None = None

    async def start(self, tracker: Tracker) -> None:
        self._tracker = tracker
        await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        self._task = asyncio.create_task(self._consume(tracker), name="bench:reference")

    async def _consume(self, tracker: Tracker) -> None:
        on_receive = tracker.on_receive
        stream = self._stream
        while True:
            reply: Any = await self._redis.xreadgroup(
                GROUP,
                CONSUMER,
                {stream: ">"},
                count=SETTINGS.read_count,
                block=SETTINGS.block_ms,
            )
            for _stream, entries in reply or []:
                for _entry_id, fields in entries:
                    on_receive(fields[b"id"].decode())
                await self._redis.xack(stream, GROUP, *[entry_id for entry_id, _ in entries])

    async def send(self, first: int, count: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        template = self._template
        for event_id in self._pool.ids[first : first + count]:
            entry: dict[Any, Any] = {**template, "id": event_id}
            pipe.xadd(self._stream, entry)
        await pipe.execute()

    async def drain(self, timeout_secs: float) -> bool:
        tracker = self._tracker
        assert tracker is not None
        deadline = time.monotonic() + timeout_secs
        while time.monotonic() < deadline:
            if len(tracker.received) >= tracker.published:
                summary: Any = await self._redis.xpending(self._stream, GROUP)
                if int(summary["pending"]) == 0:
                    return True
            await asyncio.sleep(0.005)
        return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.delete(self._stream)
        await self._redis.aclose()


class ProjectBus:
    """The project: `RedisStreamsEventBus.publish()` of `BarsClosed`; one subscribed group."""

    name = "project"

    def __init__(self, url: str, pool: Pool, prefix: str) -> None:
        self.settings = StreamsSettings(prefix=prefix, consumer=CONSUMER)
        self._redis = _client(url)
        self._pool = pool
        self.bus = RedisStreamsEventBus(self._redis, EventCodec(default_registry()), self.settings)

    async def start(self, tracker: Tracker) -> None:
        on_receive = tracker.on_receive

        async def handler(event: DomainEvent) -> None:
            on_receive(event.id)

        self.bus.subscribe(GROUP, [BarsClosed.TYPE], handler)
        await self.bus.start()

    async def send(self, first: int, count: int) -> None:
        await self.bus.publish(self._pool.events[first : first + count])

    async def drain(self, timeout_secs: float) -> bool:
        try:
            await self.bus.drain(timeout_secs)
        except DeadlineError as exc:
            note(f"  project: {exc}")
            return False
        return True

    async def close(self) -> None:
        await self.bus.stop()
        await self.bus.delete_streams()
        await self._redis.aclose()


@dataclass(slots=True)
class RunResult:
    """One run of one side in one phase."""

    side: str
    phase: str
    window_secs: float
    handled_in_window: int
    offered_in_window: int
    published: int
    latencies_ms: list[float]
    lost: int
    duplicated: int
    drained: bool
    counters: BusCounters | None = None


@dataclass(slots=True)
class Merged:
    """The runs of one side in one phase, pooled."""

    window_secs: float = 0.0
    handled: int = 0
    offered: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, run: RunResult) -> None:
        self.window_secs += run.window_secs
        self.handled += run.handled_in_window
        self.offered += run.offered_in_window
        self.latencies_ms += run.latencies_ms

    @property
    def rate(self) -> float:
        return self.handled / self.window_secs if self.window_secs else math.nan

    def pct(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)


async def _send_batch(side: Side, tracker: Tracker, pool: Pool, first: int, count: int) -> None:
    pool.ensure(first + count)
    started = time.perf_counter()
    sent = tracker.sent
    for event_id in pool.ids[first : first + count]:
        sent[event_id] = started
    await side.send(first, count)
    tracker.published += count


async def _flat_out(side: Side, tracker: Tracker, pool: Pool, stop: asyncio.Event) -> None:
    """As fast as the consumer keeps up: at most FLOW_WINDOW events not yet handled."""
    window = tracker.window or FLOW_WINDOW
    first = 0
    while not stop.is_set():
        if tracker.published - tracker.handled >= window:
            tracker.room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tracker.room.wait(), 0.1)
            continue
        await _send_batch(side, tracker, pool, first, MAX_BATCH)
        first += MAX_BATCH


async def _paced(
    side: Side, tracker: Tracker, pool: Pool, stop: asyncio.Event, rate: int, tick: float
) -> None:
    """`rate` events/s in batches every `tick`; when late, what is due goes at once (<= 100)."""
    per_tick = max(1, round(rate * tick))
    started = time.perf_counter()
    first = 0
    while not stop.is_set():
        due = (int((time.perf_counter() - started) / tick) + 1) * per_tick - first
        if due > 0:
            count = min(due, MAX_BATCH)
            await _send_batch(side, tracker, pool, first, count)
            first += count
        delay = started + (first // per_tick) * tick - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def run_once(side: Side, pool: Pool, phase: str, seconds: float) -> RunResult:
    """Start `side`, produce for warm-up + `seconds`, measure the window, drain and count."""
    tracker = Tracker(FLOW_WINDOW if phase == "throughput" else None)
    stop = asyncio.Event()
    producer: Callable[[], Awaitable[None]]
    if phase == "throughput":
        producer = lambda: _flat_out(side, tracker, pool, stop)  # noqa: E731
    else:
        rate, tick = PACED[phase]
        producer = lambda: _paced(side, tracker, pool, stop, rate, tick)  # noqa: E731
    await side.start(tracker)
    task = asyncio.create_task(producer(), name=f"bench:{side.name}:producer")
    try:
        await asyncio.sleep(WARMUP_SECS[phase])
        t0, h0, p0 = time.perf_counter(), tracker.handled, tracker.published
        await asyncio.sleep(seconds)
        t1, h1, p1 = time.perf_counter(), tracker.handled, tracker.published
        stop.set()
        await task
        drained = await side.drain(DRAIN_TIMEOUT_SECS)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await side.close()
    received, sent = tracker.received, tracker.sent
    latencies = [
        (received[event_id] - at) * 1000
        for event_id, at in sent.items()
        if t0 <= at < t1 and event_id in received
    ]
    lost = sum(1 for event_id in pool.ids[: tracker.published] if event_id not in received)
    return RunResult(
        side=side.name,
        phase=phase,
        window_secs=t1 - t0,
        handled_in_window=h1 - h0,
        offered_in_window=p1 - p0,
        published=tracker.published,
        latencies_ms=latencies,
        lost=lost,
        duplicated=len(tracker.duplicated),
        drained=drained,
        counters=side.bus.counters if isinstance(side, ProjectBus) else None,
    )


@dataclass(slots=True)
class Outcome:
    """Everything measured, by phase and side."""

    merged: dict[tuple[str, str], Merged] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=lambda: {"reference": 0, "project": 0})
    duplicated: dict[str, int] = field(default_factory=lambda: {"reference": 0, "project": 0})
    undrained: dict[str, int] = field(default_factory=lambda: {"reference": 0, "project": 0})
    published: dict[str, int] = field(default_factory=lambda: {"reference": 0, "project": 0})
    skipped_duplicates: int = 0
    backpressure_waits: int = 0
    phase_secs: dict[str, float] = field(default_factory=dict)


async def measure(url: str, seconds: float, pool: Pool, template: dict[str, str]) -> Outcome:
    """Every phase, ABBA: reference then project, then project then reference."""
    outcome = Outcome()
    run_no = 0
    best_rate = 20_000.0
    for phase, share in SHARES:
        per_run = seconds * share / 4  # two sides, two rounds
        outcome.phase_secs[phase] = per_run * 2
        for round_no in range(2):
            order = ("reference", "project") if round_no == 0 else ("project", "reference")
            for name in order:
                run_no += 1
                prefix = f"bench{run_no}"
                side: Side = (
                    BareLoop(url, pool, template, prefix)
                    if name == "reference"
                    else ProjectBus(url, pool, prefix)
                )
                expected = best_rate if phase == "throughput" else PACED[phase][0]
                pool.ensure(int(expected * (per_run + WARMUP_SECS[phase]) * 1.3) + MAX_BATCH)
                run = await run_once(side, pool, phase, per_run)
                merged = outcome.merged.setdefault((phase, name), Merged())
                merged.add(run)
                if phase == "throughput":
                    best_rate = max(best_rate, run.published / (per_run + WARMUP_SECS[phase]))
                outcome.lost[name] += run.lost
                outcome.duplicated[name] += run.duplicated
                outcome.undrained[name] += 0 if run.drained else 1
                outcome.published[name] += run.published
                if run.counters is not None:
                    outcome.skipped_duplicates += run.counters.duplicates
                    outcome.backpressure_waits += run.counters.backpressure_waits
                lat = sorted(run.latencies_ms)
                note(
                    f"  {phase:>10} {name:>9}: {run.handled_in_window / run.window_secs:9.0f} "
                    f"handled/s, offered {run.offered_in_window / run.window_secs:9.0f}/s, "
                    f"p50 {percentile(lat, 50):8.2f} ms, p99 {percentile(lat, 99):8.2f} ms, "
                    f"published {run.published}, lost {run.lost}, dup {run.duplicated}"
                    + ("" if run.drained else ", NOT DRAINED")
                )
    return outcome


def report(outcome: Outcome, server: RedisInfo, seconds: float, wire_bytes: int) -> int:
    """Print the JSON lines and the target summary; the exit status."""
    ref = {phase: outcome.merged[(phase, "reference")] for phase, _ in SHARES}
    proj = {phase: outcome.merged[(phase, "project")] for phase, _ in SHARES}
    rows: list[tuple[str, float, str, float]] = [
        ("throughput_max", proj["throughput"].rate, "events/s", ref["throughput"].rate),
        ("p50_latency_1k", proj["1k"].pct(50), "ms", ref["1k"].pct(50)),
        ("p99_latency_1k", proj["1k"].pct(99), "ms", ref["1k"].pct(99)),
        ("p999_latency_1k", proj["1k"].pct(99.9), "ms", ref["1k"].pct(99.9)),
        ("p99_latency_10k", proj["10k"].pct(99), "ms", ref["10k"].pct(99)),
    ]
    for metric, value, unit, reference in rows:
        emit(BENCH, metric, value, unit, reference=reference, reference_name=REFERENCE_NAME)
    lost, duplicated = outcome.lost["project"], outcome.duplicated["project"]
    emit(BENCH, "lost", lost, "events", reference=None, reference_name=REFERENCE_NAME)
    emit(BENCH, "duplicated", duplicated, "events", reference=None, reference_name=REFERENCE_NAME)
    emit(
        BENCH,
        "environment",
        None,
        None,
        reference=None,
        reference_name=REFERENCE_NAME,
        **environment(
            server,
            event=f"{BarsClosed.TYPE} with {len(SYMBOLS)} bars, {wire_bytes} bytes of fields",
            measuring_secs=seconds,
            phase_secs_per_side=outcome.phase_secs,
            batch_max=MAX_BATCH,
            flow_window=FLOW_WINDOW,
            read_count=SETTINGS.read_count,
            block_ms=SETTINGS.block_ms,
            offered_per_s={
                f"{phase}_{side}": round(merged.offered / merged.window_secs)
                for (phase, side), merged in outcome.merged.items()
                if phase != "throughput"
            },
            latency_samples={
                f"{phase}_{side}": len(merged.latencies_ms)
                for (phase, side), merged in outcome.merged.items()
                if phase != "throughput"
            },
        ),
    )
    ratio = proj["throughput"].rate / ref["throughput"].rate
    p99 = proj["1k"].pct(99)
    met = {
        "throughput": ratio >= TARGET_RATIO,
        "p99_1k": p99 <= TARGET_P99_1K_MS,
        "lost_dup": lost == 0 and duplicated == 0,
    }
    note(
        "targets:\n"
        f"  throughput {proj['throughput'].rate:.0f} vs bare {ref['throughput'].rate:.0f} "
        f"events/s = {ratio:.0%} (>= {TARGET_RATIO:.0%}): {_verdict(met['throughput'])}\n"
        f"  p99 at 1k/s {p99:.2f} ms (<= {TARGET_P99_1K_MS:g} ms; bare {ref['1k'].pct(99):.2f} "
        f"ms): {_verdict(met['p99_1k'])}\n"
        f"  lost {lost}, duplicated {duplicated} of {outcome.published['project']} published "
        f"(bus skipped {outcome.skipped_duplicates} redelivered/duplicate entries; "
        f"{outcome.backpressure_waits} back-pressure waits): {_verdict(met['lost_dup'])}"
    )
    failed = (
        lost
        + duplicated
        + outcome.lost["reference"]
        + outcome.duplicated["reference"]
        + sum(outcome.undrained.values())
    )
    if outcome.lost["reference"] or outcome.duplicated["reference"]:
        note(
            f"the bare loop lost {outcome.lost['reference']} and duplicated "
            f"{outcome.duplicated['reference']}: the benchmark itself is wrong"
        )
    if any(outcome.undrained.values()):
        note(f"runs that did not drain in {DRAIN_TIMEOUT_SECS:g} s: {outcome.undrained}")
    return 1 if failed else 0


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


async def main_async(server: RedisInfo, seconds: float) -> int:
    pool = Pool()
    codec = EventCodec(default_registry())
    pool.ensure(1)
    template = codec.encode(pool.events[0])
    wire_bytes = sum(len(k) + len(v.encode()) for k, v in template.items())
    note(f"bus benchmark: {seconds:g} s of measuring on {server.description}")
    note(f"  events: {BarsClosed.TYPE} with {len(SYMBOLS)} bars, {wire_bytes} bytes of fields")
    outcome = await measure(server.url, seconds, pool, template)
    return report(outcome, server, seconds, wire_bytes)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "bus benchmark")
    quiet_logs()
    with throwaway_redis(args.redis) as server:
        return asyncio.run(main_async(server, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
