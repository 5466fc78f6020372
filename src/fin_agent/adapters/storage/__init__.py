"""The stores: DuckDB (embedded default) and PostgreSQL/TimescaleDB, their schema, migrations and
daily bar caches.
"""
