"""InMemoryStore keeps each event once: its JSON and projection rows are made again when read."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from fin_agent.adapters.memory import InMemoryStore
from fin_agent.domain.events import ScanCompleted
from fin_agent.domain.gap_scanner import Rejection, RejectRule, ScanResult
from fin_agent.domain.values import Symbol

DAY = date(2025, 3, 12)
AT = datetime(2025, 3, 12, 13, 0, tzinfo=UTC)
CONTAINERS = (dict, list, tuple, set, frozenset)


def _scan(count: int) -> ScanCompleted:
    rejections = tuple(
        Rejection(
            symbol=Symbol(f"S{i:04d}"),
            rule=RejectRule.GAP_BAND,
            detail=f"gap {i}.5% outside the band",
            gap_pct=Decimal(f"{i}.5"),
        )
        for i in range(count)
    )
    result = ScanResult(day=DAY, taken_at=AT, candidates=(), rejections=rejections)
    return ScanCompleted(id="scan-1", occurred_at=AT, trading_day=DAY, result=result)


def _held(store: InMemoryStore) -> list[object]:
    """What the store holds in plain containers (the events themselves not looked into)."""
    found: list[object] = []
    todo: list[object] = [vars(store)]
    seen: set[int] = set()
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        found.append(item)
        if isinstance(item, CONTAINERS):
            todo.extend(gc.get_referents(item))
    return found


@pytest.mark.asyncio
async def test_memory_store_keeps_the_event_and_not_its_json_nor_its_rows() -> None:
    codec = EventCodec(default_registry())
    store = InMemoryStore(codec)
    scan = _scan(50)

    assert await store.write([scan]) == 1

    held = _held(store)
    assert scan in held
    assert not [s for s in held if isinstance(s, str) and "outside the band" in s]
    assert not [t for t in held if isinstance(t, tuple) and len(t) > 2 and scan.id in t]


@pytest.mark.asyncio
async def test_memory_store_makes_the_rows_and_payload_again_from_the_kept_event() -> None:
    codec = EventCodec(default_registry())
    store = InMemoryStore(codec)
    scan = _scan(3)
    await store.write([scan])

    [row] = await store.rows("events")
    rejected = await store.rows("scan_rejections", day=DAY)

    assert row["data"] == codec.payload(scan)
    assert [(r["symbol"], r["gap_pct"]) for r in rejected] == [
        ("S0000", Decimal("0.500000")),
        ("S0001", Decimal("1.500000")),
        ("S0002", Decimal("2.500000")),
    ]
