"""`fin-agent db migrate` and `fin-agent replay --day DATE`: the store from the command line."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from fin_agent.app.bootstrap import open_store
from fin_agent.app.config.settings import Settings
from fin_agent.app.day.audit import audit_day

EXIT_DIFFERENT = 1


async def db_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Migrate the configured store to the latest schema and say what it is."""
    store = await open_store(settings, settings.store.kind)
    try:
        info = await store.migrate()
    finally:
        await store.close()
    features = ", ".join(info.features) or "none"
    out.write(
        f"{info.backend} at schema version {info.schema_version} (features: {features})"
        f"{' - ' + info.detail if info.detail else ''}\n"
    )
    return 0


async def replay_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Replay a stored day; exit 0 when every decision matches, 1 when some differ."""
    store = await open_store(settings, settings.store.kind)
    try:
        result = await audit_day(store, settings, args.day)
    finally:
        await store.close()
    if args.json:
        out.write(
            json.dumps(
                {
                    "day": result.day.isoformat(),
                    "decisions": result.decisions,
                    "matches": result.matches,
                    "unversioned": result.unversioned,
                    "differences": [
                        {"kind": d.kind, "type": d.event_type, "id": d.event_id, "detail": d.detail}
                        for d in result.differences
                    ],
                },
                indent=2,
            )
            + "\n"
        )
    elif result.matches:
        out.write(
            f"{result.day}: all {result.decisions} recorded decisions made again, identical\n"
        )
    else:
        out.write(f"{result.day}: {len(result.differences)} of the decisions differ:\n")
        for d in result.differences:
            out.write(f"  {d.kind:<8} {d.event_type:<20} {d.event_id}  {d.detail}\n")
    if result.unversioned and not args.json:
        out.write(
            f"  note: {result.unversioned} decisions were recorded before strategy versions and "
            "their config is not under data_dir/config: compared on what they decided only\n"
        )
    return 0 if result.matches else EXIT_DIFFERENT
