"""Finnhub news items (the WebSocket's `news` frames, `/company-news`, `/news`) as `NewsItem`s.

Every source has the same item shape: `{"category", "datetime" (unix seconds), "headline", "id",
"image", "related" (comma-separated symbols, "" for market news), "source", "summary", "url"}`.
An item without a headline or a time is counted as bad and skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from fin_agent.domain.errors import DataError
from fin_agent.domain.news import NewsItem, news_key
from fin_agent.domain.values import Symbol, symbol

SOURCE = "finnhub"
_MAX_SECS = 10**11  # the year 5138: a larger `datetime` is not seconds since the epoch
_MAX_TEXT = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedNews:
    """The good items of a batch, in the order they came, and how many were bad."""

    items: tuple[NewsItem, ...]
    bad: int


def decode_news(data: Iterable[object], about: Symbol | None = None) -> DecodedNews:
    """The items of a Finnhub news list; `about` is the symbol asked for (`/company-news`), added
    to the item's `related` symbols."""
    items: list[NewsItem] = []
    bad = 0
    for raw in data:
        item = _item(raw, about) if isinstance(raw, Mapping) else None
        if item is None:
            bad += 1
        else:
            items.append(item)
    return DecodedNews(items=tuple(items), bad=bad)


def _item(raw: Mapping[object, object], about: Symbol | None) -> NewsItem | None:
    stamp = raw.get("datetime")
    title = raw.get("headline")
    if isinstance(stamp, float | Decimal):  # the REST client parses `1.7e9` as a Decimal
        stamp = _whole(stamp)
    if not (isinstance(stamp, int) and not isinstance(stamp, bool) and 0 < stamp < _MAX_SECS):
        return None
    if not isinstance(title, str) or not title.strip():
        return None
    published_at = datetime.fromtimestamp(stamp, UTC)
    url = _text(raw.get("url"))
    return NewsItem(
        news_id=news_key(SOURCE, raw.get("id") or None, url, title, published_at),
        symbols=_symbols(raw.get("related"), about),
        title=title.strip()[:_MAX_TEXT],
        source=_text(raw.get("source")),
        published_at=published_at,
        url=url,
        summary=_text(raw.get("summary")),
        category=_text(raw.get("category")),
    )


def _whole(value: float | Decimal) -> int | None:
    try:
        whole = int(value)
    except (ValueError, OverflowError, ArithmeticError):
        return None
    return whole if whole == value else None


def _symbols(related: object, about: Symbol | None) -> tuple[Symbol, ...]:
    found: list[Symbol] = [about] if about is not None else []
    for part in related.split(",") if isinstance(related, str) else ():
        try:
            name = symbol(part)
        except DataError:
            continue  # a market's news names indices or foreign tickers too: not ours to follow
        if name not in found:
            found.append(name)
    return tuple(found)


def _text(value: object) -> str:
    return value.strip()[:_MAX_TEXT] if isinstance(value, str) else ""
