"""What the read-at-scrape metrics read: the bus, the coordinator and the day in progress."""

from __future__ import annotations

from fin_agent.app.container import Container
from fin_agent.app.observability.metrics import LiveValues, Metrics, Sample
from fin_agent.domain.trade_plan import PlanState


def register_sources(metrics: Metrics, container: Container) -> None:
    """Refresh the live metric values from `container`'s components before every scrape."""

    async def refresh(values: LiveValues) -> None:
        samples: dict[str, list[Sample]] = {}
        bus = container.bus_stats
        if bus is not None:
            c = bus.counters
            for name, value in (
                ("bus_published_total", c.published),
                ("bus_duplicates_total", c.duplicates),
                ("bus_dead_letters_total", c.dead_lettered),
                ("bus_backpressure_waits_total", c.backpressure_waits),
                ("bus_reconnects_total", c.reconnects),
                ("bus_claimed_total", c.claimed),
                ("bus_connected", int(bus.connected)),
            ):
                samples[name] = [({}, float(value))]
            try:
                groups = await bus.group_stats()
                samples["bus_dead_letter_entries"] = [({}, float(await bus.dead_letter_count()))]
            except Exception:  # Redis down: the gauges say nothing rather than something stale
                groups = []
            samples["bus_group_lag"] = [
                ({"group": g, "stream": s}, float(lag)) for g, s, lag, _ in groups
            ]
            samples["bus_group_pending"] = [
                ({"group": g, "stream": s}, float(pending)) for g, s, _, pending in groups
            ]
        stats = container.coordinator.stats
        samples["store_batches_total"] = [({}, float(stats.batches))]
        samples["store_events_written_total"] = [({}, float(stats.events_written))]
        samples["store_failures_total"] = [({}, float(stats.store_failures))]
        samples["store_up"] = [({}, float(stats.store_up))]
        day = container.agent.day
        if day is not None:
            states = {state: 0 for state in PlanState}
            for plan in day.plans.values():
                states[plan.state] += 1
            samples["plans"] = [({"state": str(s)}, float(n)) for s, n in states.items()]
            samples["orders_total"] = [({}, float(day.orders_placed))]
            samples["open_positions"] = [({}, float(len(day.ledger.open_positions)))]
            samples["realised_pnl_dollars"] = [({}, float(day.ledger.realised))]
        values.samples.update(samples)

    metrics.add_refresher(refresh)
