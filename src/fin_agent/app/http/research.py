"""The Research page's read model: the summaries `fin-agent optimize` wrote under
`data_dir/optimize/<study>/summary.json`, newest first; an unreadable one says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def studies(folder: Path) -> list[dict[str, Any]]:
    """Every study's summary in `folder` (none when it does not exist), the newest first."""
    if not folder.is_dir():
        return []
    found = sorted(folder.glob("*/summary.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    out: list[dict[str, Any]] = []
    for path in found:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            out.append({"study": path.parent.name, "error": f"{path} cannot be read: {exc}"})
            continue
        if isinstance(data, dict):
            out.append(data)
    return out
