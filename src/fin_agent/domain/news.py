"""News items as they arrive from a stream: one headline with a stable id, and what it is about.

The id is the source's own (`finnhub:<id>`) when it has one, else a hash of the URL, else of the
title and time: the same headline met again (a reconnect, another poll, a restart) has the same id,
so it is published once. `keyword_hits` is the rule behind `scan.cancel_on_keywords`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fin_agent.domain.values import Headline, Symbol, require_utc

GENERAL = "general"
"""The category of market-wide news (about no symbol in particular)."""


def news_key(source: str, source_id: object, url: str, title: str, published_at: datetime) -> str:
    """The stable id of a headline: `<source>:<id>`, else `url:<sha256 of the URL>[:16]`, else a
    hash of its title and time."""
    if isinstance(source_id, int | str) and not isinstance(source_id, bool) and str(source_id):
        return f"{source}:{source_id}"
    basis = url.strip() or f"{title.strip()}|{published_at.isoformat()}"
    kind = "url" if url.strip() else "title"
    return f"{kind}:{hashlib.sha256(basis.encode()).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewsItem:
    """One headline: its stable id, the symbols it is about (none for market news), and its text."""

    news_id: str
    symbols: tuple[Symbol, ...]
    title: str
    source: str
    published_at: datetime
    url: str = ""
    summary: str = ""
    category: str = ""

    def __post_init__(self) -> None:
        require_utc(self.published_at, f"news time of {self.news_id}")

    def headline(self, about: Symbol) -> Headline:
        """The item as the scan's `Headline` about `about`."""
        return Headline(
            symbol=about,
            title=self.title,
            source=self.source,
            published_at=self.published_at,
            url=self.url,
        )


def keyword_hits(title: str, keywords: Iterable[str]) -> tuple[str, ...]:
    """The keywords found in `title` as whole words, case-insensitive, in the order given."""
    found: list[str] = []
    for word in keywords:
        text = word.strip()
        if text and re.search(rf"\b{re.escape(text)}\b", title, flags=re.IGNORECASE):
            found.append(text)
    return tuple(found)
