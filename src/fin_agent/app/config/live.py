"""`LiveConfig`: the config in force, and the watcher that offers it new versions of config.yaml.

A change is validated exactly as `fin-agent config check` does. A valid one waits as pending and
is adopted at the next decision point (a scan's start, a minute's bars), never in the middle of a
scan or of an order. An invalid one is refused with `error.raised` naming each bad field and the
fix; the last good config stays. A change to a restart-only key is reported, not applied. Rapid
saves settle: a file is read only once it has stayed unchanged for `settle_secs`. The file is read
and parsed in a worker thread, never on the event loop: a huge or hostile file is refused (see
`config.file`) while the agent keeps trading and answering its probes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from fin_agent.app.config.file import MAX_CONFIG_BYTES
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.app.config.version import (
    LIVE_SECTIONS,
    ConfigHistory,
    config_version,
    diff,
    effective,
    strategy_version,
)
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.events import ConfigChanged, DomainEvent, ErrorRaised, Severity
from fin_agent.domain.rules import Strategy
from fin_agent.ports.clock import Clock

log = structlog.get_logger(__name__)
Publish = Callable[[list[DomainEvent]], Awaitable[None]]
Load = Callable[[Path, str | None], Settings]
"""Reads and validates config.yaml (with its environment and secret files); raises ConfigError."""


def load_file(path: Path, profile: str | None) -> Settings:
    """`load_settings` of `path` with the process environment: what `fin-agent run` read."""
    return load_settings(path, profile=profile)


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    """One config version: its settings, hash, strategy and the hash of the deciding sections."""

    settings: Settings
    version: str
    strategy: Strategy
    strategy_version: str


def version_of(settings: Settings) -> Version:
    """The version of `settings`, with its strategy."""
    return Version(
        settings=settings,
        version=config_version(settings),
        strategy=settings.strategy(),
        strategy_version=strategy_version(settings),
    )


class LiveConfig:
    """The config in force and the one waiting for the next decision point."""

    def __init__(self, settings: Settings) -> None:
        self.current = version_of(settings)
        self._pending: Version | None = None

    @property
    def version(self) -> str:
        """The version in force."""
        return self.current.version

    @property
    def strategy(self) -> Strategy:
        """The strategy in force."""
        return self.current.strategy

    @property
    def strategy_version(self) -> str:
        """The hash of the deciding sections (scan, plan, risk, execution) in force."""
        return self.current.strategy_version

    def offer(self, pending: Version) -> None:
        """A validated version, to adopt at the next decision point."""
        self._pending = pending

    def adopt(self) -> Version | None:
        """At a decision point: put the pending version in force; returns it when there was one."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.current = pending
        return pending


class ConfigWatcher:
    """Polls config.yaml (and its secret files through the settings loader) for changes."""

    def __init__(
        self,
        path: Path,
        live: LiveConfig,
        *,
        publish: Publish,
        clock: Clock,
        history: ConfigHistory | None = None,
        profile: str | None = None,
        poll_secs: float = 1.0,
        settle_secs: float = 0.5,
        load: Load = load_file,
    ) -> None:
        self._path = path
        self._live = live
        self._publish = publish
        self._clock = clock
        self._history = history
        self._profile = profile
        self._poll_secs = poll_secs
        self._settle_secs = settle_secs
        self._load = load
        self._seen_digest = _digest(path)
        self._candidate: tuple[str, float] | None = None
        self.refused = 0
        self.applied = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set."""
        while not stop.is_set():
            await self.check(asyncio.get_running_loop().time())
            try:
                await asyncio.wait_for(stop.wait(), self._poll_secs)
            except TimeoutError:
                continue

    async def check(self, now_secs: float) -> str | None:
        """One poll at monotonic time `now_secs`; returns what happened, if anything."""
        digest = await asyncio.to_thread(_digest, self._path)
        if digest == self._seen_digest:
            self._candidate = None
            return None
        if self._candidate is None or self._candidate[0] != digest:
            self._candidate = (digest, now_secs)  # still being written: wait for it to settle
            return None
        if now_secs - self._candidate[1] < self._settle_secs:
            return None
        self._seen_digest, self._candidate = digest, None
        return await self._reload()

    async def _reload(self) -> str:
        at = self._clock.now()
        try:
            settings = await asyncio.to_thread(self._load, self._path, self._profile)
        except ConfigError as exc:
            self.refused += 1
            log.error("config_refused", problems=str(exc), version_in_force=self._live.version)
            await self._publish([_refusal(str(exc), self._live.version, at)])
            return "refused"
        old = self._live.current
        changes = diff(
            effective(old.settings), effective(settings), old.version, config_version(settings)
        )
        if not changes.changes:
            return "unchanged"
        # Only the live keys move; restart-only keys keep their running values until a restart.
        in_force = version_of(_with_live_keys(old.settings, settings))
        if self._history is not None:
            self._history.record(settings)
            self._history.record(in_force.settings)
        if changes.live:
            self._live.offer(in_force)
            self.applied += 1
        event = ConfigChanged(
            id=ConfigChanged.id_for(f"{old.version}->{in_force.version}:{at.isoformat()}"),
            occurred_at=at,
            trading_day=at.date(),
            version=in_force.version,
            previous_version=old.version,
            applied_keys=changes.live,
            restart_keys=changes.restart,
        )
        log.info(
            "config_changed",
            version=in_force.version,
            applied=list(changes.live),
            needs_restart=list(changes.restart),
        )
        events: list[DomainEvent] = [event]
        if changes.restart:
            events.append(_restart_needed(changes.restart, at))
        await self._publish(events)
        applied = changes.live
        return "applied" if applied else "restart"


def _with_live_keys(old: Settings, new: Settings) -> Settings:
    """`old` with the sections that may change live taken from `new` (restart keys stay old)."""
    update: dict[str, object] = {name: getattr(new, name) for name in LIVE_SECTIONS}
    update["logging"] = old.logging.model_copy(update={"level": new.logging.level})
    return old.model_copy(update=update)


def _digest(path: Path) -> str:
    """The hash of the file's first bytes, one past the size limit: enough to see a change (a
    file above the limit is refused whole), never a read of whatever huge file appeared there."""
    try:
        with path.open("rb") as file:
            return hashlib.sha256(file.read(MAX_CONFIG_BYTES + 1)).hexdigest()
    except OSError:
        return "missing"


def _refusal(problems: str, in_force: str, at: datetime) -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(f"config-refused:{at.isoformat()}"),
        occurred_at=at,
        trading_day=at.date(),
        source="config",
        code="config.refused",
        message=f"config.yaml was not applied; version {in_force} stays in force. {problems}",
        severity=Severity.ERROR,
    )


def _restart_needed(keys: tuple[str, ...], at: datetime) -> ErrorRaised:
    return ErrorRaised(
        id=ErrorRaised.id_for(f"config-restart:{at.isoformat()}"),
        occurred_at=at,
        trading_day=at.date(),
        source="config",
        code="config.restart_required",
        message=(
            f"{', '.join(keys)} changed: these take effect only after a restart "
            "(the running agent keeps the old values)"
        ),
        severity=Severity.WARNING,
    )
