"""Passwords inside URLs, masked wherever a URL is shown, logged or recorded.

A URL may carry a password in its user info (`redis://:pw@host`, `postgresql://u:pw@db/x`) or in
a query parameter (`?password=pw`, `?token=...`). `mask_url_secrets` replaces each with the mask,
in a URL or in any text holding URLs (a log line, an error message), and keeps the rest: the
scheme, the user, the host and port still say which server is meant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

URL_MASK = "**********"
_USERINFO_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)(?P<password>[^\s/?#]*)(?P<at>@)"
)
_SECRET_PARAM = re.compile(
    r"(?P<name>\b(?:token|apikey|api_key|key|password|passwd|secret)=)[^&\s\"'#]+", re.IGNORECASE
)


def mask_url_secrets(text: str) -> str:
    """`text` with every URL password (user info or secret query parameter) masked."""
    masked = _USERINFO_PASSWORD.sub(lambda m: m["head"] + URL_MASK + m["at"], text)
    return _SECRET_PARAM.sub(lambda m: m["name"] + URL_MASK, masked)


def mask_urls_in(values: Any) -> Any:
    """A copy of nested JSON-like settings with the secrets of every URL-looking string masked."""
    if isinstance(values, str):
        return mask_url_secrets(values) if "://" in values else values
    if isinstance(values, Mapping):
        return {key: mask_urls_in(value) for key, value in values.items()}
    if isinstance(values, list | tuple):
        return [mask_urls_in(value) for value in values]
    return values
