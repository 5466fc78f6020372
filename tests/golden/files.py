"""The golden files: `events/<type>/v<N>[-<variant>].json`, one stream entry each.

A file holds the entry's fields exactly as the codec writes them (`type`, `v`, `id`, `ts`,
`trace`), except `data`, kept as the JSON object it encodes so that a reviewer can read it; the
entry is that object written back as compact JSON, which pins key order and every character.
`-<variant>` names a second shape of one version found in stored data (see README.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

EVENTS_DIR: Final = Path(__file__).resolve().parent / "events"
MANIFEST: Final = EVENTS_DIR / "SHA256SUMS"
"""`<sha256>  <type>/<file>` of every released golden, sorted: never edited, never removed."""
_NAME = re.compile(r"v(?P<version>[1-9][0-9]*)(?:-(?P<variant>[a-z0-9_]+))?")
ENVELOPE: Final = ("type", "v", "id", "ts", "trace", "data")


@dataclass(frozen=True, slots=True, kw_only=True)
class Golden:
    """One golden file: its event type, version, variant ('' for none) and stream entry."""

    path: Path
    event_type: str
    version: int
    variant: str
    entry: dict[str, str]

    @property
    def name(self) -> str:
        """The file's stem, e.g. 'v1' or 'v1-config_version'."""
        return self.path.stem

    @property
    def data(self) -> dict[str, Any]:
        """The `data` object of the entry."""
        loaded: dict[str, Any] = json.loads(self.entry["data"])
        return loaded


def golden_path(event_type: str, version: int, variant: str = "") -> Path:
    """Where the golden of `event_type` at `version` (and `variant`) lives."""
    suffix = f"-{variant}" if variant else ""
    return EVENTS_DIR / event_type / f"v{version}{suffix}.json"


def compact(data: Any) -> str:
    """`data` as the codec writes it: compact JSON, keys in their order, non-ASCII escaped."""
    return json.dumps(data, separators=(",", ":"))


def render(entry: dict[str, str]) -> str:
    """The text of a golden file for the stream entry `entry`."""
    if tuple(entry) != ENVELOPE:
        raise ValueError(f"an entry has the fields {ENVELOPE}, in that order; got {tuple(entry)}")
    readable = {**entry, "data": json.loads(entry["data"])}
    return json.dumps(readable, indent=2, ensure_ascii=False) + "\n"


def load(path: Path) -> Golden:
    """The golden in `path`; raises ValueError naming what is wrong with the file."""
    match = _NAME.fullmatch(path.stem)
    if match is None or path.suffix != ".json":
        raise ValueError(f"{path}: golden files are named v<N>.json or v<N>-<variant>.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or tuple(raw) != ENVELOPE:
        raise ValueError(f"{path}: expected an object with the keys {ENVELOPE}, in that order")
    entry = {key: str(raw[key]) for key in ENVELOPE[:-1]} | {"data": compact(raw["data"])}
    golden = Golden(
        path=path,
        event_type=path.parent.name,
        version=int(match["version"]),
        variant=match["variant"] or "",
        entry=entry,
    )
    if entry["type"] != golden.event_type or entry["v"] != str(golden.version):
        raise ValueError(
            f"{path}: holds {entry['type']} v{entry['v']}, but its path says "
            f"{golden.event_type} v{golden.version}"
        )
    return golden


def every_golden() -> list[Golden]:
    """Every golden file, by type, then version, then variant."""
    found = [load(path) for path in EVENTS_DIR.glob("*/*.json")]
    return sorted(found, key=lambda g: (g.event_type, g.version, g.variant))


def digest(path: Path) -> str:
    """The SHA-256 of a golden file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def released_name(path: Path) -> str:
    """The manifest's name of the golden at `path`: `<type>/<file>`."""
    return path.relative_to(EVENTS_DIR).as_posix()


def released() -> dict[str, str]:
    """The manifest: `<type>/<file>` -> the SHA-256 it was released with."""
    if not MANIFEST.exists():
        return {}
    pairs = (line.split("  ", 1) for line in MANIFEST.read_text(encoding="utf-8").splitlines())
    return {name: sha for sha, name in pairs}


def release(path: Path) -> None:
    """Add the golden at `path` to the manifest (a name already in it is refused)."""
    entries = released()
    name = released_name(path)
    if name in entries:
        raise ValueError(f"{name} is already released: goldens are never rewritten")
    entries[name] = digest(path)
    lines = [f"{sha}  {n}" for n, sha in sorted(entries.items())]
    MANIFEST.write_text("\n".join(lines) + "\n", encoding="utf-8")
