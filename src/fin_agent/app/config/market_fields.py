"""Validated field types of the market sections: vendor URLs that carry no key, a header value,
trade condition codes, and numeric bounds that keep their range inside a list.

Each validator raises `SettingsValueError` with what is wrong and how to fix it; none ever shows
a token it refuses.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator

from fin_agent.app.config.problems import SettingsValueError, show

FINNHUB_REST_URL = "https://finnhub.io/api/v1"
FINNHUB_FEED_URL = "wss://ws.finnhub.io"
YAHOO_URL = "https://query1.finance.yahoo.com"
YAHOO_USER_AGENT = "Mozilla/5.0 (compatible; fin-agent/0.1)"
_KEY_FIX = (
    "give the bare URL and the key as the finnhub_api_key secret (FIN_AGENT_FINNHUB_API_KEY or "
    "the file finnhub_api_key in secrets_dir)"
)
_TOKEN_PARAMS = ("token", "apikey", "api_key")
_CODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,16}")


def _shown(parts: SplitResult) -> str:
    """The URL without its query, fragment or credentials: safe to put in an error."""
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) or "''"


def _split(value: str, schemes: tuple[str, ...], example: str) -> SplitResult:
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise SettingsValueError.single(
            "is not a URL: its host or port cannot be read", f"write it as, e.g., {example}"
        ) from None
    if parts.scheme not in schemes or not parts.hostname:
        raise SettingsValueError.single(
            f"{_shown(parts)} is not a {' or '.join(f'{s}://' for s in schemes)} URL with a host",
            f"write it as, e.g., {example}",
        )
    return parts


def _no_credentials(parts: SplitResult, fix: str) -> None:
    if parts.username is not None or parts.password is not None:
        raise SettingsValueError.single(f"{_shown(parts)} carries credentials before its host", fix)


def _finnhub_url(value: str, schemes: tuple[str, ...], example: str) -> str:
    text = value.strip()
    if any(f"{name}=" in text.lower() for name in _TOKEN_PARAMS):
        # Checked first, on the raw text, so that no message can ever show the token.
        raise SettingsValueError.single(
            "the URL carries the API key (a token= parameter; its value is not shown)",
            f"{_KEY_FIX}, e.g. {example}",
        )
    _no_credentials(_split(text, schemes, example), f"{_KEY_FIX}, e.g. {example}")
    return text


def _finnhub_feed_url(value: str) -> str:
    return _finnhub_url(value, ("wss", "ws"), FINNHUB_FEED_URL)


def _finnhub_rest_url(value: str) -> str:
    return _finnhub_url(value, ("https", "http"), FINNHUB_REST_URL)


def _web_url(value: str) -> str:
    _no_credentials(_split(value, ("https", "http"), YAHOO_URL), f"remove them, e.g. {YAHOO_URL}")
    return value.strip()


def _header_value(value: str) -> str:
    if not value.strip() or any(c in value for c in "\r\n\0"):
        raise SettingsValueError.single(
            "must be one line of text (an HTTP header value)",
            f"write a browser's user agent on one line, e.g. {YAHOO_USER_AGENT!r}",
        )
    return value.strip()


def _condition_code(value: object) -> object:
    # YAML reads `[12, 37]` as numbers; the feed's condition codes are strings ("12").
    code = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        raise SettingsValueError.single(
            f"{show(value)} is not a trade condition code",
            "write the code as the feed sends it, e.g. '12' (1-16 letters, digits, '.', '_', '-')",
        )
    return code


# Field types: ws(s)/http(s) URLs without a key or credentials, one-line header text, and trade
# condition codes as strings (YAML's 12 becomes "12").
FinnhubFeedUrl = Annotated[str, AfterValidator(_finnhub_feed_url)]
FinnhubRestUrl = Annotated[str, AfterValidator(_finnhub_rest_url)]
WebUrl = Annotated[str, AfterValidator(_web_url)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]
ConditionCode = Annotated[str, BeforeValidator(_condition_code)]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def within(lower: float, upper: float, *, above: bool = False) -> AfterValidator:
    """Bounds `lower` (excluded when `above`) to `upper`, checked by a validator: pydantic's own
    bounds lose their range in the error message of a field inside a list."""
    low, high = _number(lower), _number(upper)
    fix = (
        f"use a number above {low} and up to {high}"
        if above
        else f"use a number from {low} to {high}"
    )

    def check(value: float) -> float:
        if not value >= lower or (above and value == lower):  # `not >=` refuses NaN too
            what = "must be greater than" if above else "is below the minimum of"
            raise SettingsValueError.single(f"{_number(value)} {what} {low}", fix)
        if value > upper:
            raise SettingsValueError.single(f"{_number(value)} is above the maximum of {high}", fix)
        return value

    return AfterValidator(check)
