"""`RunProgress`: how far a run of back-to-back sessions got, read from the store.

A restarted `fin-agent run` goes on from here instead of from its first day: days with a report
are done (the next day starts from the last report's equity), and a day that started (its scan is
stored) without a report is resumed from its events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from fin_agent.domain.events import DayStarted, DomainEvent, ReportDaily
from fin_agent.ports.store import Store


@dataclass(frozen=True, slots=True, kw_only=True)
class RunProgress:
    """The sessions from the run's first day on that are reported, and the one in progress."""

    reported: tuple[date, ...] = ()
    end_equity: Decimal | None = None
    """The last reported day's end equity (None: no day reported yet)."""
    in_progress: date | None = None
    """A day whose scan is stored and whose report is not: the run resumes it."""

    @property
    def last_day(self) -> date | None:
        """The latest day the run has touched (reported or in progress)."""
        days = [*self.reported, *([self.in_progress] if self.in_progress else [])]
        return max(days, default=None)


async def read_progress(store: Store, first: date) -> RunProgress:
    """What the store holds of a run that starts at `first` (days before it are another run's)."""
    events = await store.events(types=[DayStarted.TYPE, ReportDaily.TYPE])
    return progress_of([e for e in events if e.trading_day >= first])


def progress_of(events: Sequence[DomainEvent]) -> RunProgress:
    """The progress the day-start and report events of a run say. A day's start travels in one
    publish with its scan (`scan_events`), so a started day is a scanned one; the start is read
    rather than the scan, whose result lists every symbol of the universe."""
    reports = {e.trading_day: e for e in events if isinstance(e, ReportDaily)}
    scanned = {e.trading_day for e in events if isinstance(e, DayStarted)}
    last_report = max(reports, default=None)
    open_days = sorted(
        d for d in scanned if d not in reports and (last_report is None or d > last_report)
    )
    last = reports[max(reports)] if reports else None
    return RunProgress(
        reported=tuple(sorted(reports)),
        end_equity=last.report.performance.end_equity if last is not None else None,
        in_progress=open_days[-1] if open_days else None,
    )
