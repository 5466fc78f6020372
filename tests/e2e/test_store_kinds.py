"""The same three days through Redis store the same rows on every store kind.

`fin-agent run --bus redis --days 3` (the embedded redis-server, the seeded simulator) once with
the default DuckDB file and once with `store.kind: timescale` on TimescaleDB
(FIN_AGENT_TEST_TIMESCALE) and on the machine's plain PostgreSQL (FIN_AGENT_TEST_POSTGRES, where
timescaledb is installed but not preloaded: the agent starts on plain tables and warns). Every
table must hold exactly as many rows as DuckDB's, and the candles read back must be the same.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.storage.duckdb_store import DuckDBStore
from fin_agent.adapters.storage.rows import TABLES
from fin_agent.adapters.storage.timescale_store import TimescaleStore
from fin_agent.ports.store import CandleWidth, Row, Store

REPO = Path(__file__).resolve().parents[2]
FIN_AGENT = Path(sys.executable).with_name("fin-agent")
CODEC = EventCodec(default_registry())
DAYS = ("2025-03-03", "2025-03-04", "2025-03-05")


def run_agent(data_dir: Path, **store: str) -> subprocess.CompletedProcess[str]:
    """`fin-agent run --bus redis --days 3` with `store` settings (`FIN_AGENT_STORE__<KEY>`)."""
    env = {
        **os.environ,
        "FIN_AGENT_DATA_DIR": str(data_dir),
        **{f"FIN_AGENT_STORE__{key.upper()}": value for key, value in store.items()},
    }
    return subprocess.run(
        [
            *(str(FIN_AGENT), "--config", str(REPO / "config.yaml")),
            *("run", "--bus", "redis", "--days", str(len(DAYS))),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


async def table_counts(store: Store) -> dict[str, int]:
    return {name: len(await store.rows(name)) for name in TABLES}


async def candles(store: Store) -> dict[str, list[Row]]:
    return {width: list(await store.candles(width)) for width in CandleWidth}


async def read_duckdb(path: Path) -> tuple[dict[str, int], dict[str, list[Row]]]:
    store = DuckDBStore(path, CODEC)
    try:
        return await table_counts(store), await candles(store)
    finally:
        await store.close()


async def read_postgres(dsn: str, schema: str) -> tuple[dict[str, int], dict[str, list[Row]], str]:
    store = await TimescaleStore.connect(dsn, CODEC, schema=schema)
    try:
        info = await store.migrate()  # the same schema: nothing to do, says what it is
        return await table_counts(store), await candles(store), info.backend
    finally:
        await store.close()


async def drop_schema(dsn: str, schema: str) -> None:
    con = await asyncpg.connect(dsn)
    try:
        if await con.fetchval("SELECT to_regclass('timescaledb_information.jobs') IS NOT NULL"):
            await con.execute(
                "SELECT public.delete_job(job_id) FROM timescaledb_information.jobs "
                "WHERE hypertable_schema = $1 OR proc_schema = $1",
                schema,
            )
        await con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await con.close()


@pytest.fixture(scope="module")
def duckdb_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, int], dict[str, list[Row]]]:
    """The three days on the default store, DuckDB: its row counts and candles."""
    data_dir = tmp_path_factory.mktemp("duckdb-run")
    result = run_agent(data_dir)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(DAYS)
    return asyncio.run(read_duckdb(data_dir / "fin_agent.duckdb"))


@pytest.fixture(params=["timescale", "postgres"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """(kind, DSN, a fresh schema) of each database server; the schema dropped afterwards."""
    dsn: str = request.getfixturevalue(f"{request.param}_dsn")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    yield request.param, dsn, schema
    asyncio.run(drop_schema(dsn, schema))


def test_three_days_through_redis_store_as_many_rows_per_table_as_on_duckdb(
    duckdb_run: tuple[dict[str, int], dict[str, list[Row]]],
    server: tuple[str, str, str],
    tmp_path: Path,
) -> None:
    kind, dsn, schema = server
    duck_counts, duck_candles = duckdb_run

    result = run_agent(tmp_path, kind="timescale", url=dsn, schema_name=schema)

    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(DAYS)
    counts, got_candles, backend = asyncio.run(read_postgres(dsn, schema))
    assert counts == duck_counts
    quiet = {"errors", "risk_states"}  # a clean simulated run raises no error, no risk change
    assert all(n > 0 for name, n in counts.items() if name not in quiet), counts
    assert counts["bars_1m"] > 1_000
    assert got_candles == duck_candles
    if kind == "timescale":
        assert backend == "timescaledb"
        assert "mode=hypertables" in result.stderr
    else:  # installed but not preloaded (or not installed): plain tables, and a warning
        assert backend == "postgresql"
        assert "store_plain_tables" in result.stderr
        assert "mode='plain tables'" in result.stderr
