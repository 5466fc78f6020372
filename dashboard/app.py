"""fin_agent's dashboard: `streamlit run dashboard/app.py` (or `fin-agent dashboard`).

Asks for the password first when `dashboard_password` is set, then shows the live status banner
above the page chosen in the sidebar. Everything comes from the agent's HTTP API.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402
from dashboard.banner import banner  # noqa: E402
from dashboard.client import AgentClient, Unreachable  # noqa: E402
from dashboard.config import load_config  # noqa: E402
from dashboard.login_limit import LoginLimiter  # noqa: E402
from fin_agent.domain.errors import ConfigError  # noqa: E402

VIEWS = Path(__file__).parent / "views"
AUTH_KEY = "authenticated"
AUTH_AT_KEY = "authenticated_at"
STYLE = """<style>
[data-testid="stMetricValue"] { font-size: 1.65rem; font-variant-numeric: tabular-nums; }
[data-testid="stMetricLabel"] p { font-size: 0.8rem; text-transform: uppercase;
  letter-spacing: 0.04em; opacity: 0.75; }
[data-testid="stMainBlockContainer"] { padding-top: 4.2rem; }
</style>"""


def _configure() -> bool:
    """Load the config and client once per session; False (having said why) when it cannot."""
    if ui.CONFIG_KEY in st.session_state:
        return True
    try:
        config = load_config()
    except ConfigError as exc:
        st.error(
            "**The dashboard cannot read the agent's config.** Fix it and reload the page:\n\n"
            f"```\n{exc}\n```",
            icon=":material/build:",
        )
        return False
    st.session_state[ui.CONFIG_KEY] = config
    token = config.api_token.get_secret_value() if config.api_token else None
    st.session_state[ui.CLIENT_KEY] = AgentClient(config.agent_url, token=token)
    return True


@st.cache_resource
def _limiter(per_minute: int) -> LoginLimiter:
    """One limiter for every session of this process (a new tab is no way around it)."""
    return LoginLimiter(per_minute)


def _client_key() -> str:
    """Who is signing in: the browser's address (a session of its own when unknown)."""
    address: object = st.context.ip_address
    if isinstance(address, str) and address:
        return address
    return str(st.session_state.setdefault("client_key", f"session:{uuid.uuid4()}"))


def _signed_in() -> bool:
    """True once the password was given (or when none is set) and the sign-in has not expired;
    else shows the sign-in form, refusing a client past its wrong attempts for the minute."""
    config = ui.config()
    if config.password is None:
        return True
    signed_at = st.session_state.get(AUTH_AT_KEY)
    if st.session_state.get(AUTH_KEY) and signed_at is not None:
        if time.monotonic() - float(signed_at) < config.session_ttl_mins * 60:
            return True
        st.session_state.pop(AUTH_KEY, None)  # expired: ask again
        st.info("Your session expired: sign in again.", icon=":material/timer_off:")
    limiter, client = _limiter(config.login_attempts_per_min), _client_key()
    _, middle, _ = st.columns([1, 1, 1])
    with middle, st.form("sign_in"):
        st.markdown("### :material/candlestick_chart: fin_agent")
        given = st.text_input("Password", type="password", key="password")
        if st.form_submit_button("Sign in", type="primary"):
            wait = limiter.wait_secs(client)
            if wait > 0:
                st.error(
                    f"Too many wrong passwords: try again in {wait:.0f} s.", icon=":material/lock:"
                )
            elif config.password_matches(given):
                limiter.succeeded(client)
                st.session_state[AUTH_KEY] = True
                st.session_state[AUTH_AT_KEY] = time.monotonic()
                st.session_state.pop("password", None)
                st.rerun()
            else:
                limiter.failed(client)
                st.error("Wrong password.", icon=":material/lock:")
    return False


def _sidebar() -> None:
    agent = ui.client()
    days = agent.days()
    choices = [ui.LATEST]
    if not isinstance(days, Unreachable):
        choices += [str(d["day"]) for d in reversed(days)]
    if st.session_state.get(ui.DAY_KEY) not in choices:
        st.session_state[ui.DAY_KEY] = ui.LATEST
    st.session_state.setdefault(ui.REFRESH_KEY, ui.DEFAULT_REFRESH)
    with st.sidebar:
        st.selectbox("Trading day", choices, key=ui.DAY_KEY)
        st.selectbox("Refresh every", list(ui.REFRESH_CHOICES), key=ui.REFRESH_KEY)
        st.caption(f"Agent: {agent.base_url} · times in {ui.zone()}")


def _pages() -> dict[str, list[st.Page]]:
    def page(name: str, title: str, icon: str, *, default: bool = False) -> st.Page:
        return st.Page(VIEWS / f"{name}.py", title=title, icon=icon, default=default)

    return {
        "Today": [
            page("overview", "Overview", ":material/dashboard:", default=True),
            page("scan", "Scan", ":material/radar:"),
            page("plans", "Plans", ":material/flag:"),
            page("orders", "Orders & fills", ":material/receipt_long:"),
            page("positions", "Positions & P&L", ":material/show_chart:"),
            page("news", "News", ":material/newspaper:"),
        ],
        "Operations": [
            page("control", "Control", ":material/front_hand:"),
            page("events", "Event log", ":material/list_alt:"),
            page("dead_letters", "Dead letters", ":material/mark_email_unread:"),
            page("system", "Config & schedule", ":material/settings:"),
        ],
        "History": [
            page("history", "Past days", ":material/history:"),
            page("research", "Research", ":material/science:"),
        ],
    }


def main() -> None:
    """One run of the app."""
    st.set_page_config(
        page_title="fin_agent",
        page_icon=":material/candlestick_chart:",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    st.html(STYLE)
    if not _configure() or not _signed_in():
        return
    navigation = st.navigation(_pages())
    _sidebar()
    ui.live(banner)()
    navigation.run()


main()
