"""The event store of `store.kind`: in memory, the DuckDB file under data_dir, or PostgreSQL /
TimescaleDB at `store.url` (with the `database_password` secret put in)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import InMemoryStore
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.adapters.storage.timescale_store import TimescaleStore
from fin_agent.app.config.settings import Settings
from fin_agent.ports.store import Store

StoreKind = Literal["memory", "duckdb", "timescale"]


async def open_store(
    settings: Settings, kind: StoreKind, *, codec: EventCodec | None = None
) -> Store:
    """The store of `kind`: in memory, the DuckDB file under data_dir, or PostgreSQL (`codec`:
    the run's, else a new one)."""
    codec = codec or EventCodec(default_registry())
    if kind == "memory":
        return InMemoryStore(codec)
    if kind == "duckdb":
        path = settings.data_path(settings.store.duckdb_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        return DuckDBStore(path, codec, memory_limit=settings.store.duckdb_memory_limit)
    return await TimescaleStore.connect(
        database_url(settings),
        codec,
        schema=settings.store.schema_name,
        compress_after_days=settings.store.compress_after_days,
        bars_retention_days=settings.store.bars_retention_days,
    )


def database_url(settings: Settings) -> str:
    """`store.url` with the `database_password` secret put in (it never sits in config.yaml)."""
    url = urlsplit(settings.store.url)
    secret = settings.database_password
    if secret is None or url.password is not None:
        return settings.store.url
    # Splice the password into the user info as written: no re-encoding, IPv6 brackets kept.
    userinfo, _, hostport = url.netloc.rpartition("@")
    password = quote(secret.get_secret_value(), safe="")
    return urlunsplit(url._replace(netloc=f"{userinfo}:{password}@{hostport}"))
