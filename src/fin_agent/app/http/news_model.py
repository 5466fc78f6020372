"""The News panel's read model: the day's headlines about its candidates and positions.

Newest first, each with its source, time, link and the symbols of the day it is about, and what
the day made of it (attached to a plan, cancelling it). Read from the store's `news.published` and
`news.attached` events, like every other read model: the dashboard never opens the store itself.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fin_agent.domain.events import NewsAttached, NewsPublished, ScanCompleted
from fin_agent.ports.store import Store


async def day_news(
    store: Store, day: date, *, limit: int = 100, every_symbol: bool = False
) -> dict[str, Any]:
    """The headlines of `day` about its candidates (and so its positions), newest first;
    `every_symbol`: every headline of the day, market news too."""
    events = await store.events(
        day=day, types=[NewsPublished.TYPE, NewsAttached.TYPE, ScanCompleted.TYPE]
    )
    scans = [e for e in events if isinstance(e, ScanCompleted)]
    watched = {c.symbol for c in scans[-1].result.candidates} if scans else set()
    attached: dict[str, list[NewsAttached]] = {}
    for event in events:
        if isinstance(event, NewsAttached):
            attached.setdefault(event.news_id, []).append(event)
    rows: list[dict[str, Any]] = []
    for event in events:
        if not isinstance(event, NewsPublished):
            continue
        item = event.item
        ours = [s for s in item.symbols if s in watched]
        if not ours and not every_symbol:
            continue
        ties = attached.get(item.news_id, [])
        rows.append(
            {
                "news_id": item.news_id,
                "symbols": ours or list(item.symbols),
                "title": item.title,
                "source": item.source,
                "published_at": item.published_at.isoformat(),
                "arrived_at": event.occurred_at.isoformat(),
                "url": item.url,
                "category": item.category,
                "after_scan": bool(ties),
                "cancelled": any(t.cancelled for t in ties),
                "position_open": any(t.position_open for t in ties),
                "keywords": sorted({k for t in ties for k in t.keywords}),
            }
        )
    rows.sort(key=lambda r: (r["published_at"], r["news_id"]), reverse=True)
    catalysts = [
        {"symbol": e.symbol, "title": e.title, "url": e.url, "source": e.source}
        for e in events
        if isinstance(e, NewsAttached) and e.at_scan
    ]
    return {
        "day": day.isoformat(),
        "symbols": sorted(watched),
        "news": rows[:limit],
        "catalysts": catalysts,
    }
