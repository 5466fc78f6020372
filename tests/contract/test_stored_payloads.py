"""Events stored by main before the decisions' v2 still come back from every SQL store.

Main wrote two shapes of the decisions' v1 into the `events` table: as first released (no
`config_version`) and later with it. Each test fills a migrated database with the rows of one of
those eras, exactly as main's projector wrote them (the golden payloads of tests/golden, checked
there against the codec of those commits), and reads them back through today's store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest

from fin_agent.domain.events import EVENT_TYPES, DomainEvent
from golden.files import Golden, every_golden
from golden.samples import DAY, SAMPLES, decoded_today

if TYPE_CHECKING:
    from contract.conftest import Durable

pytestmark = pytest.mark.asyncio

GOLDENS: Final = {(g.event_type, g.name): g for g in every_golden()}
ERAS: Final[dict[str, dict[str, str]]] = {
    "first released": {cls.TYPE: "v1" for cls in EVENT_TYPES},
    "with config_version": {
        cls.TYPE: "v1-config_version" if (cls.TYPE, "v1-config_version") in GOLDENS else "v1"
        for cls in EVENT_TYPES
    },
}
"""Era of main -> the golden each event type was stored as then."""


def literal(value: str) -> str:
    """`value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def insert_as_main_did(golden: Golden) -> str:
    """The `events` row main's projector wrote for the entry of `golden`."""
    entry = golden.entry
    values = (
        literal(entry["id"]),
        literal(entry["ts"]),
        literal(str(golden.data["trading_day"])),
        literal(entry["type"]),
        str(int(entry["v"])),
        literal(entry["trace"]),
        literal(entry["data"]),
    )
    columns = '"event_id", "occurred_at", "trading_day", "type", "version", "trace", "data"'
    return f'INSERT INTO "events" ({columns}) VALUES ({", ".join(values)})'  # noqa: S608


def in_store_order(events: list[DomainEvent]) -> list[DomainEvent]:
    return sorted(events, key=lambda e: (e.occurred_at, e.id))


@pytest.mark.parametrize("era", ERAS)
async def test_a_day_stored_by_main_decodes_with_the_upcasters(durable: Durable, era: str) -> None:
    goldens = [GOLDENS[(event_type, name)] for event_type, name in ERAS[era].items()]
    assert {g.version for g in goldens} == {1}
    first = await durable.open()
    await first.migrate()
    await durable.close_all()
    await durable.execute([insert_as_main_did(g) for g in goldens])

    store = await durable.open()
    await store.migrate()
    found = await store.events(day=DAY)

    assert found == in_store_order([decoded_today(g.event_type, g.name) for g in goldens])
    assert await store.write(list(SAMPLES.values())) == 0  # the same ids: nothing new
