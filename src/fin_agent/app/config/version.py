"""Config versions: a content hash of the effective config, what changed, and what may change live.

The version is the first 12 hex digits of the SHA-256 of the effective config as canonical JSON,
secrets left out (their presence changes nothing a trader decides). A password inside a URL
(`store.url`, `bus.redis_url`, any URL-valued setting) is a secret too: it is masked before the
hash, so what is recorded under `data_dir/config/` never holds it, and two configs that differ only
in such a password are one version, exactly as two values of the `database_password` secret are.
A version therefore always names one recorded content, and `config diff` between two versions
always shows what differs (a password added or removed shows as the mask appearing or going).
Strategy settings take effect at the next decision point; the rest (bus, store, ports,
addresses) needs a restart.

The strategy version is the same hash over only the sections that decide trades
(`STRATEGY_SECTIONS`): the strategy's decisions carry both, so an audit replay can tell a changed
rule from a changed port. The config version stays the name of the whole file (`config diff`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fin_agent.app.config.settings import Settings
from fin_agent.app.config.sources import secret_fields
from fin_agent.app.config.urls import mask_urls_in
from fin_agent.domain.errors import ConfigError

VERSION_LENGTH = 12
LIVE_SECTIONS: tuple[str, ...] = ("scan", "plan", "risk", "schedule", "notifications")
"""Sections that take effect at the next decision point (with `logging.level`); the rest,
execution costs included (the paper broker is built with them), need a restart."""
LIVE_KEYS: tuple[str, ...] = ("logging.level",)
_LIVE_PREFIXES = tuple(f"{s}." for s in LIVE_SECTIONS) + LIVE_KEYS
STRATEGY_SECTIONS: tuple[str, ...] = ("scan", "plan", "risk", "execution")
"""Sections that decide the strategy's scans, plans, orders and fills: their hash is the
strategy version. The rest (addresses, bus, store, schedule, logging...) decides no trade."""


def effective(settings: Settings) -> dict[str, Any]:
    """The settings as plain JSON values, without the secrets (URL passwords masked)."""
    dumped: dict[str, Any] = mask_urls_in(
        settings.model_dump(mode="json", exclude=set(secret_fields(type(settings))))
    )
    return dumped


def config_version(settings: Settings) -> str:
    """The content hash naming this configuration."""
    return _hash(effective(settings))


def strategy_version(settings: Settings) -> str:
    """The content hash of the sections of this configuration that decide trades."""
    return strategy_version_of(effective(settings))


def strategy_version_of(values: Mapping[str, Any]) -> str:
    """The strategy version of an effective config (as `effective` or `ConfigHistory.load` give
    it); a section it lacks counts as absent."""
    return _hash({name: values.get(name) for name in STRATEGY_SECTIONS})


def _hash(values: Mapping[str, Any]) -> str:
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_LENGTH]


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys: {"scan.gap_min_pct": 4, ...} (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose value differs between two effective configs."""
    a, b = flatten(old), flatten(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def is_live(key: str) -> bool:
    """True when `key` may change while the agent runs."""
    return key.startswith(_LIVE_PREFIXES)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDiff:
    """What differs between two versions, split into live changes and restart-only changes."""

    old_version: str
    new_version: str
    changes: tuple[tuple[str, Any, Any], ...]

    @property
    def live(self) -> tuple[str, ...]:
        """Keys that take effect at the next decision point."""
        return tuple(k for k, _, _ in self.changes if is_live(k))

    @property
    def restart(self) -> tuple[str, ...]:
        """Keys that need a restart to take effect."""
        return tuple(k for k, _, _ in self.changes if not is_live(k))


def diff(old: Mapping[str, Any], new: Mapping[str, Any], old_v: str, new_v: str) -> ConfigDiff:
    """The changes from `old` to `new` with their values."""
    a, b = flatten(old), flatten(new)
    changes = tuple((k, a.get(k), b.get(k)) for k in changed_keys(old, new))
    return ConfigDiff(old_version=old_v, new_version=new_v, changes=changes)


class ConfigHistory:
    """Every config version the agent ran with, as JSON files under `data_dir/config/`."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def record(self, settings: Settings) -> str:
        """Keep this configuration under its version (idempotent); return the version."""
        version = config_version(settings)
        self._folder.mkdir(parents=True, exist_ok=True)
        path = self._folder / f"{version}.json"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(effective(settings), indent=2, sort_keys=True))
            tmp.replace(path)
        return version

    def load(self, version: str) -> dict[str, Any]:
        """The configuration of `version`."""
        matches = sorted(self._folder.glob(f"{version}*.json")) if version else []
        if len(matches) != 1:
            known = ", ".join(self.versions()) or "none recorded yet"
            raise ConfigError(
                f"config version {version!r} is {'ambiguous' if matches else 'unknown'}: "
                f"known versions under {self._folder}: {known}"
            )
        loaded: dict[str, Any] = json.loads(matches[0].read_text())
        return loaded

    def versions(self) -> list[str]:
        """Recorded versions, oldest first."""
        if not self._folder.is_dir():
            return []
        files = sorted(self._folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        return [p.stem for p in files]


def render_diff(changes: ConfigDiff) -> Iterable[str]:
    """Lines for people: one per changed key, marked live or restart."""
    yield f"{changes.old_version} -> {changes.new_version}"
    if not changes.changes:
        yield "  no differences"
    for key, old, new in changes.changes:
        when = "live" if is_live(key) else "restart"
        yield f"  {key}: {json.dumps(old)} -> {json.dumps(new)}   ({when})"
