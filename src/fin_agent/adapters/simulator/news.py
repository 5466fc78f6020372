"""Made-up headlines: catalysts of gappers, and now and then news about a quiet stock.

All fall in the 24 hours before the 09:00 ET scan; a catalyst comes after the previous close.
`session_news` gives the same headlines as a stream's items, with follow-ups during the session.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fin_agent.adapters.simulator.day import DayDraws
from fin_agent.adapters.simulator.universe import Profile
from fin_agent.domain.news import NewsItem, news_key
from fin_agent.domain.values import Headline, Symbol

EXCHANGE_TZ = ZoneInfo("America/New_York")

_GOOD: tuple[str, ...] = (
    "{company} beats quarterly estimates and raises full-year guidance",
    "{company} wins regulatory approval for its lead product",
    "{company} signs multi-year supply agreement with a major customer",
    "{company} receives takeover offer at a premium",
    "{company} reports positive mid-stage trial results",
    "{company} announces a larger share buyback",
)
_BAD: tuple[str, ...] = (
    "{company} misses estimates and cuts its outlook",
    "{company} prices a discounted share offering",
    "{company} trial misses its primary endpoint",
    "{company} discloses an accounting review",
    "{company} loses its largest customer contract",
)
_FOLLOW_UP = (
    "Analysts react to the {company} news",
    "{symbol} moves sharply in pre-market trading",
    "{company} confirms details in a statement",
)
_QUIET: tuple[str, ...] = (
    "{company} to present at an investor conference",
    "{company} appoints a new chief financial officer",
    "Analyst reiterates rating on {company}",
    "{company} files its quarterly report",
)
_SOURCES = ("SimWire", "Simulated Market Desk", "Sim Newsroom")


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, EXCHANGE_TZ).astimezone(UTC)


def make_headlines(seed: int, profile: Profile, day: date, draws: DayDraws) -> tuple[Headline, ...]:
    """Return the headlines that belong to the session `day` of `profile`'s symbol, oldest first."""
    if draws.headlines == 0:
        return ()
    name = profile.symbol
    rng = random.Random(f"{seed}:{name}:{day.isoformat()}:news")
    scan = _at(day, time(9, 0))
    if draws.catalyst:
        first, last = _at(day - timedelta(days=1), time(16, 5)), _at(day, time(8, 30))
        titles = _GOOD if draws.move.gap_log > 0 else _BAD
    else:
        first, last = scan - timedelta(hours=24), scan - timedelta(minutes=1)
        titles = _QUIET
    span_minutes = int((last - first).total_seconds() // 60)
    published = first + timedelta(minutes=rng.randint(0, span_minutes))
    found: list[Headline] = []
    for index in range(draws.headlines):
        template = rng.choice(titles if index == 0 else _FOLLOW_UP)
        found.append(
            Headline(
                symbol=name,
                title=template.format(company=profile.company, symbol=name),
                source=rng.choice(_SOURCES),
                published_at=published,
                url=f"https://news.example.com/sim/{name.lower()}/{day.isoformat()}/{index}",
            )
        )
        published = min(
            scan - timedelta(minutes=1), published + timedelta(minutes=rng.randint(5, 90))
        )
    return tuple(found)


def catalyst_minute(headlines: tuple[Headline, ...], premarket_start: datetime, latest: int) -> int:
    """Return the pre-market minute the first headline moves the price (0 if it came overnight)."""
    seconds = (headlines[0].published_at - premarket_start).total_seconds()
    return max(0, min(latest, int(-(-seconds // 60))))


_DURING: tuple[str, ...] = (
    "{company} shares extend the move as volume builds",
    "Analyst raises price target on {company}",
    "{company} management comments on the news in an interview",
    "{symbol} among the day's most active stocks",
)


def session_news(
    seed: int, profile: Profile, day: date, draws: DayDraws, before: tuple[Headline, ...]
) -> tuple[NewsItem, ...]:
    """The symbol's news of session `day` as a stream gives it: the headlines before the scan
    (`before`, from `make_headlines`), then, on a catalyst day, follow-ups during the session.

    The follow-ups draw from their own random stream, so the market's prices are unchanged.
    """
    name = profile.symbol
    items = [_item(h, name) for h in before]
    if draws.catalyst:
        rng = random.Random(f"{seed}:{name}:{day.isoformat()}:news-session")
        first, last = _at(day, time(9, 45)), _at(day, time(15, 30))
        span_minutes = int((last - first).total_seconds() // 60)
        for index in range(rng.randint(1, 2)):
            published = first + timedelta(minutes=rng.randint(0, span_minutes))
            title = rng.choice(_DURING).format(company=profile.company, symbol=name)
            url = f"https://news.example.com/sim/{name.lower()}/{day.isoformat()}/session-{index}"
            items.append(
                _item(
                    Headline(
                        symbol=name,
                        title=title,
                        source=rng.choice(_SOURCES),
                        published_at=published,
                        url=url,
                    ),
                    name,
                )
            )
    return tuple(sorted(items, key=lambda i: (i.published_at, i.news_id)))


def _item(headline: Headline, name: Symbol) -> NewsItem:
    return NewsItem(
        news_id=news_key("sim", None, headline.url, headline.title, headline.published_at),
        symbols=(name,),
        title=headline.title,
        source=headline.source,
        published_at=headline.published_at,
        url=headline.url,
        category="company",
    )
