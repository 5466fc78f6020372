"""The suite's proof that it can see a difference: a tampered copy of the reference must read as
exactly one lost, one changed and one duplicated row.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from chaos_suite.compare import diff_stores, read_store
from chaos_suite.faults import Reference
from chaos_suite.services import admin_dsn
from pg_cluster import PostgresCluster


async def self_check(cluster: PostgresCluster, ref: Reference) -> dict[str, Any]:
    """Prove the comparison counts: a copy of the reference with one fill deleted, one trade
    changed and one order added must read as 1 lost, 1 changed, 1 duplicated, nothing else."""
    copy = "chaos_self_check"
    con = await asyncpg.connect(admin_dsn(cluster), timeout=10)
    try:
        await con.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        await con.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{ref.database}"')
    finally:
        await con.close()
    con = await asyncpg.connect(admin_dsn(cluster, copy), timeout=10)
    try:
        await con.execute("DELETE FROM fills WHERE ctid = (SELECT min(ctid) FROM fills)")
        await con.execute(
            "UPDATE trades SET net_pnl = net_pnl + 0.01 WHERE ctid = (SELECT min(ctid) FROM trades)"
        )
        await con.execute(
            "INSERT INTO orders SELECT 'chaos-extra-' || event_id, occurred_at, trading_day, "
            "client_order_id, symbol, side, qty, trigger, stop, target, config_version "
            "FROM orders LIMIT 1"
        )
    finally:
        await con.close()
    diff = diff_stores(ref.rows, await read_store(admin_dsn(cluster, copy)))
    expected = {
        "fills": {"lost": 1, "duplicated": 0, "changed": 0},
        "trades": {"lost": 0, "duplicated": 0, "changed": 1},
        "orders": {"lost": 0, "duplicated": 1, "changed": 0},
    }
    found = {
        t: {k: v for k, v in d.items() if k != "reference"} for t, d in diff.per_table().items()
    }
    return {
        "bench": "chaos",
        "metric": "self_check",
        "lost": diff.lost,
        "duplicated": diff.duplicated,
        "changed": diff.changed,
        "recovery_s": None,
        "verdict": "detects" if found == expected else "blind",
        "tables": found,
        "expected": expected,
    }
