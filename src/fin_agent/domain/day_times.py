"""`DayTimes`: the instants that shape a trading day's decisions, from its session and the rules.

The opening range, the entry window, the flatten and the close are worked out here once; the
trading day, its resume and the audit replay all take them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from fin_agent.domain.indicators import RangeWindow
from fin_agent.domain.rules import Strategy
from fin_agent.domain.trade_plan import EntryWindow
from fin_agent.domain.values import Bar, Session


@dataclass(frozen=True, slots=True, kw_only=True)
class DayTimes:
    """The instants (UTC) that shape a session's decisions."""

    scan_at: datetime
    opens_at: datetime
    range_ends_at: datetime
    entries_until: datetime
    flatten_at: datetime
    closes_at: datetime

    @classmethod
    def of(cls, session: Session, strategy: Strategy, tz: tzinfo, scan_time: time) -> DayTimes:
        """The day's instants for `session`; `tz` is the exchange's time zone, in which the
        entry deadline and the scan time are read."""
        rules = strategy.plan
        utc = session.open.tzinfo
        deadline = datetime.combine(session.day, rules.entry_deadline, tz).astimezone(utc)
        return cls(
            scan_at=datetime.combine(session.day, scan_time, tz).astimezone(utc),
            opens_at=session.open,
            range_ends_at=RangeWindow.of(session.open, rules.opening_range_minutes).ends_at,
            entries_until=min(deadline, session.close),
            flatten_at=session.close - timedelta(minutes=rules.flatten_before_close_minutes),
            closes_at=session.close,
        )

    @property
    def range_window(self) -> RangeWindow:
        """The minutes whose bars make the opening range."""
        return RangeWindow(starts_at=self.opens_at, ends_at=self.range_ends_at)

    @property
    def entry_window(self) -> EntryWindow:
        """When a plan may trigger: from the range's end until the entry deadline."""
        return EntryWindow(opens_at=self.range_ends_at, closes_at=self.entries_until)

    def in_session(self, bar: Bar) -> bool:
        """True for a regular-session bar (a live feed also closes pre- and after-market ones)."""
        return self.opens_at <= bar.start < self.closes_at
