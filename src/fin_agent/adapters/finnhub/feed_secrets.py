"""Keeping the Finnhub key out of logs: the key must ride in the WebSocket URL (`?token=`), so
every text that may carry the URL is masked before it is logged."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any
from urllib.parse import quote, urlsplit

MASK = "**********"
_TOKEN_PARAM = re.compile(r"((?:token|apikey|api_key|key)=)[^&\s\"']+", re.IGNORECASE)


class MaskingLogger(logging.LoggerAdapter[logging.Logger]):
    """A stdlib logger adapter that formats each record itself and masks the secret in it."""

    def __init__(self, logger: logging.Logger, secret: str) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log `msg % args` with the secret masked; a traceback is masked text too."""
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = f"{msg} {args}"
        exc_info = kwargs.pop("exc_info", None)
        if isinstance(exc_info, tuple):
            exc_info = exc_info[1]
        if isinstance(exc_info, BaseException):
            text += "\n" + "".join(traceback.format_exception(exc_info))
        elif exc_info:
            text += "\n" + traceback.format_exc()
        kwargs.pop("stack_info", None)
        self.logger.log(level, mask_secret(text, self._secret), **kwargs)


def mask_secret(text: str, secret: str) -> str:
    """`text` with `secret` and any `token=`/`key=` query value replaced by a mask."""
    if secret:
        text = text.replace(secret, MASK).replace(quote(secret, safe=""), MASK)
    return _TOKEN_PARAM.sub(lambda m: m.group(1) + MASK, text)


def url_with_token(url: str, api_key: str) -> str:
    """`url` with the key as its `token` query parameter (Finnhub's WebSocket auth)."""
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}token={quote(api_key, safe='')}"
