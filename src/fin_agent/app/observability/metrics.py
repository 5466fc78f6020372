"""Prometheus metrics of the agent: one registry per agent, base units, `_total` and `_seconds`.

Handling is observed as it happens (events processed and failed per type, processing time);
everything else is read from the live components when Prometheus scrapes (bus counters, group lag
and pending, dead letters, coordinator and plan figures), so hot paths carry no metric calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "fin_agent"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

Sample = tuple[dict[str, str], float]
Reader = Callable[[], dict[str, list[Sample]]]
"""Returns current values by metric short name: [(labels, value), ...]."""


@dataclass(frozen=True, slots=True)
class Family:
    """A metric read at scrape time: its short name, help text, kind and label names."""

    name: str
    help: str
    kind: str  # "counter" | "gauge"
    labels: tuple[str, ...] = ()


@dataclass(slots=True)
class LiveValues:
    """The latest values of read-at-scrape metrics, refreshed asynchronously before a scrape."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)


class _LiveCollector(Collector):
    def __init__(self, families: tuple[Family, ...], values: LiveValues) -> None:
        self._families = families
        self._values = values

    def collect(self) -> Iterator[Metric]:
        for fam in self._families:
            full = f"{PREFIX}_{fam.name}"
            metric: CounterMetricFamily | GaugeMetricFamily
            if fam.kind == "counter":
                metric = CounterMetricFamily(
                    full.removesuffix("_total"), fam.help, labels=fam.labels
                )
            else:
                metric = GaugeMetricFamily(full, fam.help, labels=fam.labels)
            for labels, value in self._values.samples.get(fam.name, []):
                metric.add_metric([labels.get(name, "") for name in fam.labels], value)
            yield metric


LIVE_FAMILIES: tuple[Family, ...] = (
    Family("bus_published_total", "Events published to the bus.", "counter"),
    Family("bus_duplicates_total", "Redeliveries and duplicate entries skipped.", "counter"),
    Family("bus_dead_letters_total", "Entries moved to the dead-letter stream.", "counter"),
    Family("bus_backpressure_waits_total", "Times a producer waited for room.", "counter"),
    Family("bus_reconnects_total", "Reconnections to Redis.", "counter"),
    Family("bus_claimed_total", "Entries reclaimed from idle consumers.", "counter"),
    Family("bus_connected", "1 while the bus reaches Redis.", "gauge"),
    Family("bus_group_lag", "Entries a consumer group has not read yet.", "gauge",
           ("group", "stream")),
    Family("bus_group_pending", "Entries read but not acknowledged.", "gauge", ("group", "stream")),
    Family("bus_dead_letter_entries", "Entries waiting in the dead-letter stream.", "gauge"),
    Family("store_batches_total", "Batches the coordinator committed.", "counter"),
    Family("store_events_written_total", "New events written to the store.", "counter"),
    Family("store_failures_total", "Store writes that failed and were retried.", "counter"),
    Family("store_up", "1 while the store accepts writes.", "gauge"),
    Family("plans", "Plans of the current day by state.", "gauge", ("state",)),
    Family("orders_total", "Orders placed today.", "counter"),
    Family("open_positions", "Positions held now.", "gauge"),
    Family("realised_pnl_dollars", "Realised P&L of the current day.", "gauge"),
    Family("scheduler_runs_total", "Scheduled job runs.", "counter", ("job", "outcome")),
    Family("scheduler_heartbeat_age_seconds", "Seconds since the scheduler's last tick.", "gauge"),
    Family("feed_reconnects_total", "Market feed reconnections.", "counter"),
    Family("feed_downtime_seconds_total", "Time the market feed was down.", "counter"),
    Family("data_budget_used_ratio", "Share of the data-vendor call budget used.", "gauge",
           ("budget",)),
)  # fmt: skip


class Metrics:
    """The agent's registry with its instruments; `render()` gives the text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.live = LiveValues()
        self._refreshers: list[Callable[[LiveValues], Awaitable[None]]] = []
        self.processed = Counter(
            f"{PREFIX}_events_processed_total",
            "Events handled, by consumer group and event type.",
            ("group", "type"),
            registry=self.registry,
        )
        self.failed = Counter(
            f"{PREFIX}_events_failed_total",
            "Event handlings that raised, by consumer group and event type.",
            ("group", "type"),
            registry=self.registry,
        )
        self.processing = Histogram(
            f"{PREFIX}_event_processing_seconds",
            "Time to handle one event (or one batch, per event), by consumer group.",
            ("group",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(LIVE_FAMILIES, self.live))
        # each label set's child, looked up once: a backtest observes thousands of handlings
        self._counted: dict[tuple[str, str, bool], Counter] = {}
        self._timed: dict[str, Histogram] = {}

    def observe(self, group: str, event_type: str, seconds: float, ok: bool) -> None:
        """Record one handling (the buses call this after each handler or batch)."""
        counter = self._counted.get((group, event_type, ok))
        if counter is None:
            counter = (self.processed if ok else self.failed).labels(group, event_type)
            self._counted[(group, event_type, ok)] = counter
        counter.inc()
        timer = self._timed.get(group)
        if timer is None:
            timer = self._timed[group] = self.processing.labels(group)
        timer.observe(seconds)

    def add_refresher(self, refresh: Callable[[LiveValues], Awaitable[None]]) -> None:
        """Register an async reader of live values, run before each scrape."""
        self._refreshers.append(refresh)

    async def render(self) -> bytes:
        """Refresh the live values, then the Prometheus text format."""
        for refresh in self._refreshers:
            await refresh(self.live)
        return generate_latest(self.registry)
