"""`fin-agent dlq list | show ID | replay ID... | purge`: the dead-letter stream for operators."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from fin_agent.app.bootstrap import open_dead_letters
from fin_agent.app.config.settings import Settings
from fin_agent.ports.bus_admin import DeadLetter


def _row(letter: DeadLetter) -> str:
    detail = letter.detail if len(letter.detail) <= 60 else letter.detail[:57] + "..."
    return (
        f"{letter.id:<18} {letter.reason:<16} {letter.event_type:<22} "
        f"{letter.stream}#{letter.entry_id}  {letter.group:<10} {letter.deliveries:>3}  {detail}"
    )


def _as_dict(letter: DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "reason": letter.reason,
        "detail": letter.detail,
        "stream": letter.stream,
        "entry_id": letter.entry_id,
        "group": letter.group,
        "deliveries": letter.deliveries,
        "fields": dict(letter.fields),
    }


async def dlq_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Run one `dlq` subcommand and print its result."""
    async with open_dead_letters(settings) as letters:
        if args.dlq_command == "list":
            rows = await letters.oldest(args.limit)
            if args.json:
                out.write(json.dumps([_as_dict(r) for r in rows], indent=2) + "\n")
            elif not rows:
                out.write("the dead-letter stream is empty\n")
            else:
                out.write("id                 reason           type                   origin\n")
                out.writelines(_row(r) + "\n" for r in rows)
        elif args.dlq_command == "show":
            out.write(json.dumps(_as_dict(await letters.get(args.id)), indent=2) + "\n")
        elif args.dlq_command == "replay":
            for old, new in await letters.replay(args.ids):
                out.write(f"replayed {old} as {new}\n")
        else:
            out.write(f"purged {await letters.purge()} dead letters\n")
    return 0
