"""What the dashboard needs from the agent's settings: where the agent listens and the password.

The agent's URL is `FIN_AGENT_DASHBOARD_AGENT_URL` when set, else `http.host`/`http.port` of the
same `config.yaml` (`FIN_AGENT_CONFIG`, else ./config.yaml) with its environment and secret files.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.domain.errors import ConfigError

AGENT_URL_ENV = "FIN_AGENT_DASHBOARD_AGENT_URL"
_ANY_ADDRESS = {"0.0.0.0", "::", ""}  # noqa: S104 - listening everywhere: connect locally


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """The agent's base URL, the login password (None: no login) and the exchange time zone."""

    agent_url: str
    password: SecretStr | None = field(default=None, repr=False)
    timezone: str = "America/New_York"
    api_token: SecretStr | None = field(default=None, repr=False)
    """The agent's bearer token (the `api_token` secret), sent with every request."""
    session_ttl_mins: int = 480
    login_attempts_per_min: int = 5

    def password_matches(self, given: str) -> bool:
        """Whether `given` is the password, compared in constant time; True when none is set."""
        if self.password is None:
            return True
        expected = self.password.get_secret_value().encode()
        return hmac.compare_digest(given.encode(), expected)


def agent_url_of(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """`FIN_AGENT_DASHBOARD_AGENT_URL`, else http://<http.host>:<http.port> (0.0.0.0: 127.0.0.1)."""
    env = os.environ if environ is None else environ
    explicit = env.get(AGENT_URL_ENV, "").strip()
    if explicit:
        return explicit.rstrip("/")
    if settings.http.port == 0:
        raise ConfigError(
            "http.port is 0, so the agent picks a free port the dashboard cannot know: "
            f"set {AGENT_URL_ENV} to the agent's URL, or give http.port a number"
        )
    host = settings.http.host
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            host = f"[{host}]"
    except ValueError:  # a host name
        pass
    return f"http://{host}:{settings.http.port}"


def load_config(environ: Mapping[str, str] | None = None) -> DashboardConfig:
    """The dashboard's config from the agent's settings; raises `ConfigError` naming the fix."""
    settings = load_settings(environ=environ)
    return DashboardConfig(
        agent_url=agent_url_of(settings, environ),
        password=settings.dashboard_password,
        timezone=settings.timezone,
        api_token=settings.api_token,
        session_ttl_mins=settings.dashboard.session_ttl_mins,
        login_attempts_per_min=settings.dashboard.login_attempts_per_min,
    )
