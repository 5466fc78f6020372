"""The composition root: the only place that builds adapters from settings and wires them."""

from fin_agent.app.bootstrap.core import (
    BusKind,
    Container,
    StoreKind,
    build,
    build_replay,
    build_simulation,
    database_url,
    embedded_redis_url,
    notification_router,
    open_store,
    readiness_ping,
    running,
    streams_settings,
)

__all__ = [
    "BusKind",
    "Container",
    "StoreKind",
    "build",
    "build_replay",
    "build_simulation",
    "database_url",
    "embedded_redis_url",
    "notification_router",
    "open_store",
    "readiness_ping",
    "running",
    "streams_settings",
]
