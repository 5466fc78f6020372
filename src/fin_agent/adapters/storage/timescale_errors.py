"""How the PostgreSQL store's failures map onto the error tree: asyncpg and socket errors become
`ConfigError`, `DataError` or a transient `AdapterError` naming the fix; which ones reconnect."""

from __future__ import annotations

from urllib.parse import urlparse

import asyncpg

from fin_agent.domain.errors import AdapterError, ConfigError, DataError, FinAgentError

_CONNECTION_LOST = (
    OSError,  # TimeoutError included
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
)
"""The connection or the server went away: the statement may succeed on a fresh connection."""
BROKEN = (*_CONNECTION_LOST, asyncpg.exceptions.InternalClientError)
"""Failures after which a connection is not trusted again (the protocol may be mid-error)."""
_UNAVAILABLE = (
    *BROKEN,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
"""Failures of the connection or the server, not of the statement: transient."""


def reconnectable(exc: BaseException) -> bool:
    """A dropped connection is tried once more on fresh ones; a timeout is not (it would wait
    twice as long for a server that is slow, not gone)."""
    return isinstance(exc, BROKEN) and not isinstance(exc, TimeoutError)


def describe_dsn(dsn: str) -> str:
    """`host:port/database` of a DSN, without user or password, for messages and logs."""
    try:
        url = urlparse(dsn)
        port = url.port or 5432
    except ValueError:
        return "the configured DSN"
    return f"{url.hostname or 'localhost'}:{port}{url.path or '/'}"


def failure(exc: BaseException, doing: str, where: str) -> FinAgentError:
    """The error-tree exception for an asyncpg or socket failure, with what to check."""
    if isinstance(exc, FinAgentError):
        return exc
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return ConfigError(
            f"cannot {doing}: PostgreSQL at {where} refused the login ({reason}): check the user "
            "and password (the DSN or the store password secret)"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return ConfigError(
            f"cannot {doing}: {reason}: create the database at {where} or fix the DSN"
        )
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return ConfigError(
            f"cannot {doing}: {reason}: grant the store's user rights on the database and schema "
            "(or connect as the owner)"
        )
    if isinstance(exc, asyncpg.DiskFullError):
        return AdapterError(
            f"cannot {doing}: the disk of PostgreSQL at {where} is full ({reason}): free space "
            "on the volume holding its data directory (or grow it); writing resumes by itself"
        )
    if isinstance(exc, asyncpg.UndefinedTableError):
        return ConfigError(f"cannot {doing}: {reason}: run migrate() before using the store")
    if isinstance(exc, asyncpg.DataError):
        return DataError(f"cannot {doing}: PostgreSQL refused a value ({reason})")
    if isinstance(exc, _UNAVAILABLE):
        return AdapterError(
            f"cannot {doing}: PostgreSQL at {where} is unreachable ({reason}): check the host "
            "and port of the DSN and that PostgreSQL is running and accepting connections"
        )
    return AdapterError(f"cannot {doing}: PostgreSQL at {where} failed ({reason})")
