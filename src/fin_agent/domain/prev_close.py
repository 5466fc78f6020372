"""The previous close a gap is measured from: the latest source that has the previous session's.

Two sources can say it: the daily bars (Yahoo's, cached) and the pre-market quote (Finnhub's `pc`).
A daily bar counts only when it is the bar of the previous session itself: a history whose last
row is older (Yahoo's row for yesterday is null, or not published yet) would measure the gap over
two sessions. The rule, in order:

1. the daily bar of the previous session (the quote's `pc`, when it differs, is the disagreement);
2. else the quote's `pc` (the daily bars' last session is the disagreement);
3. else none: the symbol is rejected for want of data, saying which session was missing.

With the previous session unknown (`prev_session` None: an old snapshot, a calendar that starts
at the day), the last daily bar is the previous close, as before this rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from fin_agent.domain.values import DailyBar


class CloseSource(StrEnum):
    """Where a previous close came from."""

    DAILY_BAR = "daily_bar"
    QUOTE = "quote"


@dataclass(frozen=True, slots=True, kw_only=True)
class PrevClose:
    """The previous close chosen, its source, and what the other source said when it differed.

    `daily_close` and `quoted_close` are both sources' figures (None where one had nothing for
    the previous session), so a disagreement can be logged with both.
    """

    price: Decimal
    source: CloseSource
    daily_close: Decimal | None
    quoted_close: Decimal | None
    last_daily_session: date | None

    @property
    def disagrees(self) -> bool:
        """True when the sources did not say the same: both present and different, or the daily
        bars lacking the previous session the quote had."""
        if self.source is CloseSource.QUOTE:
            return True
        return self.quoted_close is not None and self.quoted_close != self.daily_close


def previous_close(
    *,
    daily_bars: Sequence[DailyBar],
    quoted: Decimal | None,
    prev_session: date | None,
) -> PrevClose | None:
    """The previous close by the module's rule, or None when no source has it."""
    last = daily_bars[-1] if daily_bars else None
    last_session = last.session if last else None
    if prev_session is None:
        if last is None:
            return None
        return PrevClose(
            price=last.close,
            source=CloseSource.DAILY_BAR,
            daily_close=last.close,
            quoted_close=quoted,
            last_daily_session=last_session,
        )
    daily = last.close if last is not None and last.session == prev_session else None
    if daily is not None:
        return PrevClose(
            price=daily,
            source=CloseSource.DAILY_BAR,
            daily_close=daily,
            quoted_close=quoted,
            last_daily_session=last_session,
        )
    if quoted is not None:
        return PrevClose(
            price=quoted,
            source=CloseSource.QUOTE,
            daily_close=None,
            quoted_close=quoted,
            last_daily_session=last_session,
        )
    return None


def missing_detail(*, daily_bars: Sequence[DailyBar], prev_session: date | None) -> str:
    """Why no previous close could be had, in words for the rejection."""
    if not daily_bars:
        return "no previous close (no daily bars)"
    return (
        f"no close of the previous session {prev_session}: the daily bars end "
        f"{daily_bars[-1].session} and no quote carried one"
    )
