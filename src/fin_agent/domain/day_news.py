"""News on a trading day: the catalyst a scan found, and headlines after the scan tied to plans.

A headline about a candidate becomes a `news.attached` event (its plan id is the one the plan has
or will have); when its title holds one of `cancel_on_keywords`, a plan not yet triggered (or a
candidate not yet planned) is cancelled by a `plan.rejected` with the reason `news`. Pure: the
day's state folds these events like any other, so a restart stands where the day stood.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime

from fin_agent.domain.events import DomainEvent, NewsAttached, PlanRejected
from fin_agent.domain.gap_scanner import ScanResult, UniverseSnapshot
from fin_agent.domain.news import NewsItem, keyword_hits, news_key
from fin_agent.domain.trade_plan import PlanRejectReason, PlanState, TradePlan, plan_id
from fin_agent.domain.values import Symbol

NEWS_REASON = PlanRejectReason.NEWS


def catalyst_events(
    *, day: date, strategy: str, snapshot: UniverseSnapshot, result: ScanResult, at: datetime
) -> list[DomainEvent]:
    """The headline each candidate passed the catalyst rule with (its latest in the window, the
    one the scan result names as `top_headline`)."""
    headlines = {item.symbol: item.headlines for item in snapshot.symbols}
    events: list[DomainEvent] = []
    for candidate in result.candidates:
        found = headlines.get(candidate.symbol, ())
        if not found:
            continue
        top = found[-1]
        news_id = news_key("scan", None, top.url, top.title, top.published_at)
        item = NewsItem(
            news_id=news_id,
            symbols=(candidate.symbol,),
            title=top.title,
            source=top.source,
            published_at=top.published_at,
            url=top.url,
        )
        events.append(
            _attached(
                day,
                candidate.symbol,
                plan_id(day, candidate.symbol, strategy),
                item,
                at,
                at_scan=True,
            )
        )
    return events


def _attached(
    day: date,
    name: Symbol,
    pid: str,
    item: NewsItem,
    at: datetime,
    *,
    at_scan: bool = False,
    keywords: tuple[str, ...] = (),
    cancelled: bool = False,
    position_open: bool = False,
) -> NewsAttached:
    """`item` tied to `name`'s plan: found by the scan (no keywords) or arrived after it."""
    return NewsAttached(
        id=NewsAttached.id_for(f"{day}:{name}:{item.news_id}"),
        occurred_at=at,
        trading_day=day,
        symbol=name,
        plan_id=pid,
        news_id=item.news_id,
        title=item.title,
        source=item.source,
        published_at=item.published_at,
        url=item.url,
        at_scan=at_scan,
        keywords=keywords,
        cancelled=cancelled,
        position_open=position_open,
    )


def news_events(
    *,
    day: date,
    strategy: str,
    result: ScanResult | None,
    plans: Mapping[Symbol, TradePlan],
    planned: bool,
    held: Collection[Symbol],
    item: NewsItem,
    keywords: Collection[str],
    at: datetime,
) -> list[DomainEvent]:
    """A headline after the scan about the day's candidates: attached to each one's plan, and
    cancelling those not yet triggered when its title holds a keyword."""
    if result is None:
        return []
    events: list[DomainEvent] = []
    hits = keyword_hits(item.title, keywords)
    for candidate in result.candidates:
        name = candidate.symbol
        if name not in item.symbols:
            continue
        pid = plan_id(day, name, strategy)
        plan = plans.get(name)
        open_to_cancel = (plan is None and not planned) or (
            plan is not None and plan.state is PlanState.PLANNED
        )
        cancel = bool(hits) and open_to_cancel
        events.append(
            _attached(
                day,
                name,
                pid,
                item,
                at,
                keywords=hits,
                cancelled=cancel,
                position_open=name in held,
            )
        )
        if cancel:
            events.append(
                PlanRejected(
                    id=PlanRejected.id_for(f"{pid}:news"),
                    occurred_at=at,
                    trading_day=day,
                    plan_id=pid,
                    symbol=name,
                    reason=str(NEWS_REASON),
                    detail=(
                        f"cancelled by news ({', '.join(hits)}): {item.title!r} "
                        f"({item.source or 'unknown source'}, {item.published_at:%H:%M} UTC)"
                    ),
                )
            )
    return events
