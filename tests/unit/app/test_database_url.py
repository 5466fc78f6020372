"""The store URL gets the database password from its secret, never from config.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from fin_agent.app.bootstrap import database_url
from fin_agent.app.config.runtime import StoreSettings
from fin_agent.app.config.settings import Settings


def settings_with(url: str, password: str | None) -> Settings:
    secret = SecretStr(password) if password is not None else None
    return Settings(
        store=StoreSettings(kind="timescale", url=url),
        database_password=secret,
        data_dir=Path("var"),
    )


@pytest.mark.parametrize(
    ("url", "password", "expected"),
    [
        (
            "postgresql://agent@db:5432/fin",
            "s3cr:t/@",
            "postgresql://agent:s3cr%3At%2F%40@db:5432/fin",
        ),
        ("postgresql://a%40b@[::1]:5432/fin", "pw", "postgresql://a%40b:pw@[::1]:5432/fin"),
        ("postgresql://agent@db/fin", None, "postgresql://agent@db/fin"),
        ("postgresql://agent:inline@db/fin", "secret", "postgresql://agent:inline@db/fin"),
    ],
)
def test_database_url_puts_the_secret_password_in_as_written(
    url: str, password: str | None, expected: str
) -> None:
    assert database_url(settings_with(url, password)) == expected
