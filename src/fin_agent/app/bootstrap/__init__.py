"""The composition root: the only place that builds adapters, from settings, for every mode.

It hands the app a `Container` (or a `LiveAgent`) typed by ports; nothing outside this package
imports `fin_agent.adapters` (tests/architecture/test_composition_root.py and import-linter
hold that). Modules by concern:

- `core`: `build`, the parts every run shares (bus, store, broker, agent, coordinator);
  the wall clock and the exchange calendar;
- `bus`: the event bus of `bus.kind`, its dead letters and counts, readiness ping, slots;
- `broker`: the broker of `broker.kind`; an in-process local Alpaca server (the demo);
- `store`: the event store of `store.kind`; `notifications`: the webhook notifiers;
- `simulation`, `replay` (backtests and the audit of a stored day), `live`: one per mode;
  `session_replay`: a recorded day through the live wiring against local servers;
- `vendors`: the live market's settings as the vendor adapters' configs.
"""

from fin_agent.app.bootstrap.broker import local_alpaca
from fin_agent.app.bootstrap.bus import (
    BusKind,
    embedded_redis_url,
    open_dead_letters,
    readiness_ping,
    streams_settings,
)
from fin_agent.app.bootstrap.core import build, exchange_calendar, wall_clock
from fin_agent.app.bootstrap.live import build_live
from fin_agent.app.bootstrap.notifications import notification_router
from fin_agent.app.bootstrap.replay import (
    BacktestStore,
    RecordedBars,
    backtest_settings,
    build_audit,
    build_replay,
    load_bar_files,
)
from fin_agent.app.bootstrap.session_replay import SessionReplay, session_replay
from fin_agent.app.bootstrap.simulation import build_simulation
from fin_agent.app.bootstrap.store import StoreKind, database_url, open_store
from fin_agent.app.container import Container, running

__all__ = [
    "BacktestStore",
    "BusKind",
    "Container",
    "RecordedBars",
    "SessionReplay",
    "StoreKind",
    "backtest_settings",
    "build",
    "build_audit",
    "build_live",
    "build_replay",
    "build_simulation",
    "database_url",
    "embedded_redis_url",
    "exchange_calendar",
    "load_bar_files",
    "local_alpaca",
    "notification_router",
    "open_dead_letters",
    "open_store",
    "readiness_ping",
    "running",
    "session_replay",
    "streams_settings",
    "wall_clock",
]
