"""The `news` section: the live run's news stream (Finnhub's WebSocket news or REST polling).

Restart-only, like the market sections: the stream is built once, at start. The scan's own news
keys (`catalyst_required`, `catalyst_window`, `cancel_on_keywords`) are in `scan`.
"""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import Field

from fin_agent.app.config.fields import ClockTime
from fin_agent.app.config.sections import SettingsSection

NewsSource = Literal["websocket", "poll", "off"]
"""Where the live run's news comes from: Finnhub's WebSocket news (a plan that includes it),
polling `/company-news` and `/news` over REST (any key), or nowhere."""


class NewsSettings(SettingsSection):
    """The live run's news stream: headlines onto the bus as `news.published`, once each."""

    source: NewsSource = Field(
        default="poll",
        description="websocket: Finnhub's subscribe-news on the trade feed's connection (a plan "
        "with news streaming); poll: /company-news and /news over REST within the rate budget; "
        "off: no stream (the scan still asks /company-news).",
    )
    start: ClockTime = Field(
        default=time(4, 0),
        description="Exchange time the stream starts on a session day (it runs until the close).",
    )
    poll_every_secs: float = Field(
        default=60.0, ge=5, le=3600, description="Seconds between two polling rounds."
    )
    poll_symbols_per_round: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Company-news calls in one polling round (the symbols take turns): with "
        "poll_every_secs, the poller's share of the REST budget.",
    )
    poll_general: bool = Field(
        default=True, description="Also poll market news (/news?category=general) each round."
    )
    max_symbols: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Most symbols followed at once: the day's candidates and positions first, "
        "then the scan universe.",
    )
