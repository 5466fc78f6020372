"""Benchmark of `RedisStreamsEventBus` against a bare redis-py loop, side by side, on one Redis.

Both sides run in this process on one asyncio loop (producer and consumer together, as in the
agent), against a redis-server started for this run only, and carry the same realistic entries:
`market.bars_closed` events with a few bars, about 0.9 kB on the wire.

- reference: a bare redis-py loop. The producer XADDs pre-encoded envelopes (the codec's output
  for the same event, only the id differs) in pipelines; the consumer does XREADGROUP (COUNT,
  BLOCK) and one XACK per batch, with the bus's own read_count and block_ms.
- project: `RedisStreamsEventBus` with `EventCodec`: `publish()` of real `BarsClosed` events in
  batches, one group subscribed to them with a handler that notes the receive time.

Three phases, each on fresh streams, share `--seconds` (30 % throughput, 50 % at 1k/s, 20 % at
10k/s), half each side. Within a phase both sides stay started and take turns in slices of about
a second, ABBA (reference, project, project, reference, ...), so the load other processes put on
a shared machine falls on both alike; a slice ramps up, is measured, then waits until its side
has handled everything before the other side's turn.
- throughput: the producer publishes batches of 100 as fast as it can while at most 1,000 events
  are published and not yet handled (so the consumer keeps up); `throughput_max` is the events
  handled per second, end to end, over the measured windows.
- 1k and 10k: a paced producer offers 1,000 events/s (10 every 10 ms) or 10,000 events/s (10
  every 1 ms), catching up when late (what is due goes in one publish, at most 100); latency is
  from the start of the publish call to the handler, per event, with the send time kept in a
  side dict keyed by event id. When a side cannot keep up, it offers less than asked: the
  environment line's `offered_per_s` says how much each side really offered.

`lost` (published, never handled after a drain) and `duplicated` (handled more than once) count
every project event of the run. `cpu_per_event_max` is this process's CPU time (user + system,
both ends of the bus) per event handled in the throughput phase: steadier than events/s when
other processes load the machine. Exits 1 when anything was lost or duplicated (either side).

Run: `.venv/bin/python bench/bus.py [--seconds N] [--redis plain|embedded] > results.jsonl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Awaitable
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

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.redis.bus import RedisStreamsEventBus
from fin_agent.adapters.redis.streams import BusCounters, StreamsSettings
from fin_agent.domain.errors import DeadlineError
from fin_agent.domain.events import BarsClosed, DomainEvent
from fin_agent.domain.values import Bar, Symbol

BENCH = "bus"
REFERENCE_NAME = "bare redis-py XADD/XREADGROUP/XACK loop"
GROUP = "bench"
CONSUMER = "bench-consumer"
SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "AMD")
MAX_BATCH = 100  # events per publish() / pipeline when flat out, and the most a catch-up sends
FLOW_WINDOW = 1_000  # throughput phase: at most this many events published and not yet handled
PACED = {"1k": (1_000, 0.010), "10k": (10_000, 0.001)}  # offered events/s, tick (s)
SHARES = (("throughput", 0.3), ("1k", 0.5), ("10k", 0.2))  # of --seconds, split by side
SLICE_SECS = 1.0  # about this long each measured slice; the sides take turns, ABBA
RAMP_SECS = {"throughput": 0.25, "1k": 0.1, "10k": 0.1}  # each slice, before measuring
WARMUP_SECS = 0.5  # each side, each phase, before the first slice; not measured
DRAIN_TIMEOUT_SECS = 120.0
THROUGHPUT_GUESS = 30_000  # events/s: events are made ahead for this; beyond, made on the fly
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
        self.measured: list[str] = []  # ids sent while a slice was measuring
        self.measuring = False
        self.published = 0
        self.handled = 0
        self.window = window
        self.room = asyncio.Event()
        self.room.set()
        self._settled = asyncio.Event()

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
        if not self._settled.is_set() and len(self.received) >= self.published:
            self._settled.set()

    async def caught_up(self, timeout_secs: float) -> bool:
        """Wait until every event published so far was handled; False after `timeout_secs`."""
        self._settled.clear()
        if len(self.received) >= self.published:
            return True
        try:
            await asyncio.wait_for(self._settled.wait(), timeout_secs)
        except TimeoutError:
            return False
        return True


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
        self._stopping = False

    async def start(self, tracker: Tracker) -> None:
        self._tracker = tracker
        await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        self._task = asyncio.create_task(self._consume(tracker), name="bench:reference")

    async def _consume(self, tracker: Tracker) -> None:
        on_receive = tracker.on_receive
        stream = self._stream
        while not self._stopping:
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
        # Stopped by a flag, as the bus stops its consumers: on Python 3.11 a cancel() that lands
        # while redis-py sends a command is often swallowed (its asyncio.wait_for, gh-86296).
        self._stopping = True
        if self._task is not None:
            await _finish(self._task, SETTINGS.block_ms / 1000 + 2.0)
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


async def _finish(task: asyncio.Task[None], timeout_secs: float) -> None:
    """Wait for `task` to end by itself, then cancel it until it does (a cancel may be lost)."""
    done, _ = await asyncio.wait([task], timeout=timeout_secs)
    while not done:
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=0.5)
    if not task.cancelled() and task.exception() is not None:
        raise RuntimeError(f"{task.get_name()} failed") from task.exception()


@dataclass(slots=True)
class Window:
    """One measured slice of one side: how long, how many handled and offered."""

    secs: float
    handled: int
    offered: int
    cpu_secs: float  # CPU time of this process (user + system) over the window


@dataclass(slots=True)
class SideResult:
    """One side in one phase: its measured slices pooled, and what it lost or repeated."""

    windows: list[Window] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    published: int = 0
    lost: int = 0
    duplicated: int = 0
    drained: bool = True
    counters: BusCounters | None = None

    @property
    def secs(self) -> float:
        return sum(w.secs for w in self.windows)

    @property
    def rate(self) -> float:
        """Events handled per second over the measured windows."""
        secs = self.secs
        return sum(w.handled for w in self.windows) / secs if secs else math.nan

    @property
    def offered_rate(self) -> float:
        secs = self.secs
        return sum(w.offered for w in self.windows) / secs if secs else math.nan

    @property
    def cpu_us_per_event(self) -> float:
        """This process's CPU time per event handled in the windows (both ends of the bus)."""
        handled = sum(w.handled for w in self.windows)
        return sum(w.cpu_secs for w in self.windows) / handled * 1e6 if handled else math.nan

    def pct(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)


async def _send_batch(side: Side, tracker: Tracker, pool: Pool, count: int) -> None:
    first = tracker.published
    pool.ensure(first + count)
    ids = pool.ids[first : first + count]
    started = time.perf_counter()
    sent = tracker.sent
    for event_id in ids:
        sent[event_id] = started
    if tracker.measuring:
        tracker.measured += ids
    await side.send(first, count)
    tracker.published += count


async def _flat_out(side: Side, tracker: Tracker, pool: Pool, stop: asyncio.Event) -> None:
    """As fast as the consumer keeps up: at most FLOW_WINDOW events not yet handled."""
    window = tracker.window or FLOW_WINDOW
    while not stop.is_set():
        if tracker.published - tracker.handled >= window:
            tracker.room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tracker.room.wait(), 0.1)
            continue
        await _send_batch(side, tracker, pool, MAX_BATCH)


async def _paced(
    side: Side, tracker: Tracker, pool: Pool, stop: asyncio.Event, rate: int, tick: float
) -> None:
    """`rate` events/s in batches every `tick`; when late, what is due goes at once (<= 100)."""
    per_tick = max(1, round(rate * tick))
    started = time.perf_counter()
    done = 0
    while not stop.is_set():
        due = (int((time.perf_counter() - started) / tick) + 1) * per_tick - done
        if due > 0:
            count = min(due, MAX_BATCH)
            await _send_batch(side, tracker, pool, count)
            done += count
        delay = started + (done // per_tick) * tick - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def run_slice(
    side: Side, tracker: Tracker, pool: Pool, phase: str, secs: float, *, measured: bool = True
) -> Window:
    """Produce for a ramp then `secs` (measured), stop, and wait until the side has caught up."""
    stop = asyncio.Event()
    producer: Awaitable[None]
    if phase == "throughput":
        producer = _flat_out(side, tracker, pool, stop)
    else:
        rate, tick = PACED[phase]
        producer = _paced(side, tracker, pool, stop, rate, tick)
    task = asyncio.create_task(producer, name=f"bench:{side.name}:producer")
    try:
        await asyncio.sleep(RAMP_SECS[phase])
        t0, c0, h0, p0 = (
            time.perf_counter(),
            time.process_time(),
            tracker.handled,
            tracker.published,
        )
        tracker.measuring = measured
        await asyncio.sleep(secs)
        tracker.measuring = False
        t1, c1, h1, p1 = (
            time.perf_counter(),
            time.process_time(),
            tracker.handled,
            tracker.published,
        )
    finally:
        tracker.measuring = False
        stop.set()
        await _finish(task, 5.0)
    await tracker.caught_up(DRAIN_TIMEOUT_SECS)
    return Window(secs=t1 - t0, handled=h1 - h0, offered=p1 - p0, cpu_secs=c1 - c0)


def _slices(per_side_secs: float) -> int:
    """An even number of slices (for ABBA) of about SLICE_SECS each, at least two."""
    return max(2, 2 * round(per_side_secs / (2 * SLICE_SECS)))


async def run_phase(
    url: str, pool: Pool, template: dict[str, str], phase: str, per_side_secs: float, tag: str
) -> dict[str, SideResult]:
    """Both sides on fresh streams, alternating slices ABBA..., then a drain and the counts."""
    window = FLOW_WINDOW if phase == "throughput" else None
    trackers = {"reference": Tracker(window), "project": Tracker(window)}
    sides: dict[str, Side] = {
        "reference": BareLoop(url, pool, template, f"bench-{tag}-ref"),
        "project": ProjectBus(url, pool, f"bench-{tag}-bus"),
    }
    results = {name: SideResult() for name in sides}
    slices = _slices(per_side_secs)
    slice_secs = per_side_secs / slices
    try:
        for name, side in sides.items():
            await side.start(trackers[name])
        for name, side in sides.items():  # warm-up, not measured
            await run_slice(side, trackers[name], pool, phase, WARMUP_SECS, measured=False)
        for i in range(slices):
            order = ("reference", "project") if i % 2 == 0 else ("project", "reference")
            for name in order:
                win = await run_slice(sides[name], trackers[name], pool, phase, slice_secs)
                results[name].windows.append(win)
                note(
                    f"  {phase:>10} {i + 1}/{slices} {name:>9}: {win.handled / win.secs:8.0f} "
                    f"handled/s, offered {win.offered / win.secs:8.0f}/s"
                )
        for name, side in sides.items():
            results[name].drained = await side.drain(DRAIN_TIMEOUT_SECS)
    finally:
        for side in sides.values():
            await side.close()
    for name, result in results.items():
        tracker = trackers[name]
        received, sent = tracker.received, tracker.sent
        result.latencies_ms = [
            (received[event_id] - sent[event_id]) * 1000
            for event_id in tracker.measured
            if event_id in received
        ]
        result.published = tracker.published
        result.lost = sum(
            1 for event_id in pool.ids[: tracker.published] if event_id not in received
        )
        result.duplicated = len(tracker.duplicated)
        side = sides[name]
        result.counters = side.bus.counters if isinstance(side, ProjectBus) else None
        note(
            f"  {phase:>10} {name:>9}: {result.rate:8.0f} handled/s, offered "
            f"{result.offered_rate:8.0f}/s, p50 {result.pct(50):8.2f} ms, p99 "
            f"{result.pct(99):8.2f} ms, published {result.published}, lost {result.lost}, "
            f"duplicated {result.duplicated}" + ("" if result.drained else ", NOT DRAINED")
        )
    return results


@dataclass(slots=True)
class Outcome:
    """Everything measured, by phase and side."""

    results: dict[tuple[str, str], SideResult] = field(default_factory=dict)
    phase_secs: dict[str, float] = field(default_factory=dict)
    slices: dict[str, int] = field(default_factory=dict)

    def total(self, side: str, what: str) -> int:
        """The sum over the phases of `lost`, `duplicated` or `published` for `side`."""
        return sum(
            int(getattr(result, what)) for (_, name), result in self.results.items() if name == side
        )

    @property
    def undrained(self) -> list[str]:
        return [f"{p}/{s}" for (p, s), result in self.results.items() if not result.drained]

    def counter(self, what: str) -> int:
        return sum(
            getattr(result.counters, what)
            for result in self.results.values()
            if result.counters is not None
        )


async def measure(url: str, seconds: float, pool: Pool, template: dict[str, str]) -> Outcome:
    """Every phase: its share of `seconds`, half each side, in alternating slices."""
    outcome = Outcome()
    for phase, share in SHARES:
        per_side = seconds * share / 2
        outcome.phase_secs[phase] = per_side
        outcome.slices[phase] = slices = _slices(per_side)
        rate = PACED[phase][0] if phase in PACED else THROUGHPUT_GUESS
        pool.ensure(int(rate * (per_side + slices * RAMP_SECS[phase] + WARMUP_SECS) * 1.2))
        results = await run_phase(url, pool, template, phase, per_side, phase)
        for name, result in results.items():
            outcome.results[(phase, name)] = result
    return outcome


def report(outcome: Outcome, server: RedisInfo, seconds: float, wire_bytes: int) -> int:
    """Print the JSON lines and the target summary; the exit status."""
    ref = {phase: outcome.results[(phase, "reference")] for phase, _ in SHARES}
    proj = {phase: outcome.results[(phase, "project")] for phase, _ in SHARES}
    rows: list[tuple[str, float, str, float]] = [
        ("throughput_max", proj["throughput"].rate, "events/s", ref["throughput"].rate),
        ("p50_latency_1k", proj["1k"].pct(50), "ms", ref["1k"].pct(50)),
        ("p99_latency_1k", proj["1k"].pct(99), "ms", ref["1k"].pct(99)),
        ("p999_latency_1k", proj["1k"].pct(99.9), "ms", ref["1k"].pct(99.9)),
        ("p99_latency_10k", proj["10k"].pct(99), "ms", ref["10k"].pct(99)),
        (
            "cpu_per_event_max",
            proj["throughput"].cpu_us_per_event,
            "us/event",
            ref["throughput"].cpu_us_per_event,
        ),
    ]
    for metric, value, unit, reference in rows:
        emit(BENCH, metric, value, unit, reference=reference, reference_name=REFERENCE_NAME)
    lost, duplicated = outcome.total("project", "lost"), outcome.total("project", "duplicated")
    emit(BENCH, "lost", lost, "events", reference=None, reference_name=REFERENCE_NAME)
    emit(BENCH, "duplicated", duplicated, "events", reference=None, reference_name=REFERENCE_NAME)
    paced = [(phase, side) for (phase, side) in outcome.results if phase != "throughput"]
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
            secs_per_side=outcome.phase_secs,
            slices_per_side=outcome.slices,
            batch_max=MAX_BATCH,
            flow_window=FLOW_WINDOW,
            read_count=SETTINGS.read_count,
            block_ms=SETTINGS.block_ms,
            offered_per_s={
                f"{phase}_{side}": round(outcome.results[(phase, side)].offered_rate)
                for phase, side in paced
            },
            latency_samples={
                f"{phase}_{side}": len(outcome.results[(phase, side)].latencies_ms)
                for phase, side in paced
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
        f"events/s = {ratio:.0%} (>= {TARGET_RATIO:.0%}): {_verdict(met['throughput'])}; "
        f"CPU of this process {proj['throughput'].cpu_us_per_event:.0f} vs "
        f"{ref['throughput'].cpu_us_per_event:.0f} us/event\n"
        f"  p99 at 1k/s {p99:.2f} ms (<= {TARGET_P99_1K_MS:g} ms; bare {ref['1k'].pct(99):.2f} "
        f"ms): {_verdict(met['p99_1k'])}\n"
        f"  lost {lost}, duplicated {duplicated} of {outcome.total('project', 'published')} "
        f"published (the bus skipped {outcome.counter('duplicates')} duplicate entries; "
        f"{outcome.counter('backpressure_waits')} back-pressure waits): "
        f"{_verdict(met['lost_dup'])}"
    )
    ref_lost, ref_dup = outcome.total("reference", "lost"), outcome.total("reference", "duplicated")
    if ref_lost or ref_dup:
        note(f"the bare loop lost {ref_lost} and duplicated {ref_dup}: the benchmark is wrong")
    if outcome.undrained:
        note(f"did not drain in {DRAIN_TIMEOUT_SECS:g} s: {', '.join(outcome.undrained)}")
    return 1 if lost or duplicated or ref_lost or ref_dup or outcome.undrained else 0


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
