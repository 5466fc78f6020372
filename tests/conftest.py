"""Fixtures shared by every test tree."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def in_ci() -> bool:
    """True under CI (CI=true), where a missing service or data set must fail, never skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The recorded market data in ../shared/data: skipped when absent, except in CI."""
    if not SHARED_DATA.is_dir():
        if in_ci():
            pytest.fail(f"CI must provide the shared market data at {SHARED_DATA}")
        pytest.skip(f"shared market data not found at {SHARED_DATA}: these tests need it")
    return SHARED_DATA


POSTGRES_DSN = os.environ.get(
    "FIN_AGENT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The machine's PostgreSQL (FIN_AGENT_TEST_POSTGRES): skipped when down, except in CI."""
    url = urlparse(POSTGRES_DSN)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), timeout=2):
            pass
    except OSError as exc:
        if in_ci():
            pytest.fail(f"CI must provide PostgreSQL at {POSTGRES_DSN}: {exc}")
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_DSN} ({exc}): start it to run this test"
        )
    return POSTGRES_DSN
