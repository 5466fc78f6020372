"""`Journal`: the entries this process published that some local group has not yet acknowledged.

When Redis loses its data (restarted without persistence), every entry not yet handled is gone
from the streams; the journal still holds those this process published, and the bus publishes
them again. Consumers dedupe on the event id and stores upsert on it, so a republished entry that
was handled after all changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence


class Journal:
    """Published entries by event id, each with the local groups that still have to ack it."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[str, Mapping[str, str], set[str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, stream: str, fields: Mapping[str, str], groups: Collection[str]) -> None:
        """Keep a published entry until every group in `groups` has acknowledged it."""
        event_id = fields.get("id", "")
        if event_id and groups:
            self._entries[event_id] = (stream, fields, set(groups))

    def acked(self, group: str, event_ids: Sequence[str]) -> None:
        """`group` acknowledged these events (handled, skipped or dead-lettered)."""
        for event_id in event_ids:
            kept = self._entries.get(event_id)
            if kept is None:
                continue
            kept[2].discard(group)
            if not kept[2]:
                del self._entries[event_id]

    def unacknowledged(self) -> list[tuple[str, Mapping[str, str]]]:
        """Every kept entry as (stream, fields), oldest first."""
        return [(stream, fields) for stream, fields, _ in self._entries.values()]
