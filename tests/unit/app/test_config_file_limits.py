"""A hostile config.yaml (huge, an alias bomb, self-referring or deeply nested) is refused quickly
with a config problem, by startup, `config check` and the live watcher alike, never parsed on the
event loop."""

from __future__ import annotations

import io
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fin_agent.adapters.memory import FixedClock
from fin_agent.app.cli import config_check
from fin_agent.app.config.file import MAX_ALIAS_NODES, MAX_CONFIG_BYTES, MAX_DEPTH
from fin_agent.app.config.live import ConfigWatcher, LiveConfig
from fin_agent.app.config.settings import Settings, load_settings
from fin_agent.domain.errors import ConfigError
from fin_agent.domain.events import DomainEvent, ErrorRaised

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"
BOMB_FIX = "write the values out instead of repeating large anchors (&name) many times"


def alias_bomb(levels: int) -> str:
    """The "billion laughs": each level an anchor holding nine aliases of the one below.

    Expanded, `levels` levels hold 9**levels strings; as written they take a few hundred bytes.
    """
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"lol{n}: &lol{n} [{', '.join([f'*lol{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def load(path: Path, tmp_path: Path) -> Settings:
    return load_settings(path, environ={}, secrets_dir=tmp_path / "no-secrets")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    # 9**12 (282 billion) strings: expanding them would exhaust memory long before any check ran.
    path = write(tmp_path, alias_bomb(12) + "scan:\n  universe: *lol11\n")

    with pytest.raises(ConfigError) as caught:
        load(path, tmp_path)

    [line] = str(caught.value).splitlines()
    assert re.fullmatch(
        rf"{re.escape(str(path))}: YAML aliases \(\*name\) repeat [\d,]+ values, above the "
        rf"limit of 10,000 \(an alias bomb\?\); {re.escape(BOMB_FIX)}",
        line,
    )


def test_aliases_that_repeat_a_little_are_accepted(tmp_path: Path) -> None:
    text = (
        "scan:\n  universe: &symbols [AAPL, MSFT, NVDA]\n"
        "profiles:\n  paper:\n    scan: {universe: *symbols}\n"
        "  prod:\n    scan:\n      <<: {top_n: 3}\n      universe: *symbols\n"
    )

    settings = load_settings(
        write(tmp_path, text), profile="prod", environ={}, secrets_dir=tmp_path / "none"
    )

    assert settings.scan.universe == ["AAPL", "MSFT", "NVDA"]
    assert settings.scan.top_n == 3


def test_the_alias_limit_counts_the_values_aliases_repeat(tmp_path: Path) -> None:
    anchor = "[" + ", ".join(["x"] * 99) + "]"  # the list and its 99 items: 100 nodes
    uses = MAX_ALIAS_NODES // 100
    at_limit = f"a: &a {anchor}\nb: [{', '.join(['*a'] * uses)}]\n"
    above = f"a: &a {anchor}\nb: [{', '.join(['*a'] * (uses + 1))}]\n"

    with pytest.raises(ConfigError) as within:
        load(write(tmp_path, at_limit), tmp_path)
    with pytest.raises(ConfigError) as beyond:
        load(write(tmp_path, above), tmp_path)

    assert "alias" not in str(within.value)  # refused only for its unknown keys
    assert "unknown key" in str(within.value)
    assert f"repeat {MAX_ALIAS_NODES + 100:,} values" in str(beyond.value)


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "scan:\n  top_n: 3\nloop: &loop\n  again: *loop\n")

    with pytest.raises(
        ConfigError,
        match="^"
        + re.escape(
            f"{path}: the YAML anchor (&name) at line 3 holds an alias (*name) to itself, which "
            "would never end; remove that alias (*name) or move it out of its anchor (&name)"
        )
        + "$",
    ):
        load(path, tmp_path)


def test_nesting_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"  # deep enough to break PyYAML's recursion
    just_deep_enough = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"

    with pytest.raises(ConfigError) as refused:
        load(write(tmp_path, deep), tmp_path)
    with pytest.raises(ConfigError) as accepted:
        load(write(tmp_path, just_deep_enough), tmp_path)

    assert str(refused.value) == (
        f"{tmp_path / 'config.yaml'}: nested more than {MAX_DEPTH} levels deep at line 1, "
        f"column {MAX_DEPTH + 2}; write the settings as config.yaml does: sections of keys, a "
        "few levels deep"
    )
    assert str(accepted.value).startswith("a: unknown key")


def test_a_file_above_one_mebibyte_is_refused_unparsed(tmp_path: Path) -> None:
    text = REPO_CONFIG.read_text(encoding="utf-8")
    padding = "#" * (MAX_CONFIG_BYTES - len(text.encode()))
    at_limit = write(tmp_path, text + padding)
    assert at_limit.stat().st_size == MAX_CONFIG_BYTES
    settings = load(at_limit, tmp_path)
    above = write(tmp_path, text + padding + "#")

    with pytest.raises(ConfigError) as caught:
        load(above, tmp_path)

    assert settings.scan.top_n == 5
    assert str(caught.value) == (
        f"{above}: is larger than the 1 MiB a config file may be; point --config or "
        "FIN_AGENT_CONFIG at config.yaml; a config file is a few kilobytes (long lists such as "
        "scan.universe fit well within the limit)"
    )


def test_config_check_refuses_an_alias_bomb_with_the_same_problem(tmp_path: Path) -> None:
    path = write(tmp_path, alias_bomb(12))
    stdout, stderr = io.StringIO(), io.StringIO()

    code = config_check.run(path, None, stdout=stdout, stderr=stderr, environ={})

    assert code == 2
    assert stdout.getvalue() == ""
    first, second = stderr.getvalue().splitlines()
    assert first == "config.yaml is invalid:"
    assert second.startswith(f"  {path}: YAML aliases (*name) repeat ")
    assert second.endswith(BOMB_FIX)


@pytest.mark.asyncio
async def test_the_live_watcher_reads_and_parses_the_file_off_the_event_loop(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, REPO_CONFIG.read_text(encoding="utf-8"))
    live = LiveConfig(load(path, tmp_path))
    before = live.version
    published: list[DomainEvent] = []
    loaded_on: list[int] = []

    async def publish(events: list[DomainEvent]) -> None:
        published.extend(events)

    def load_in_thread(config: Path, profile: str | None) -> Settings:
        loaded_on.append(threading.get_ident())
        return load_settings(config, profile=profile, environ={}, secrets_dir=tmp_path / "none")

    watcher = ConfigWatcher(
        path,
        live,
        publish=publish,
        clock=FixedClock(datetime(2025, 3, 3, 20, 0, tzinfo=UTC)),
        load=load_in_thread,
    )
    path.write_text(path.read_text(encoding="utf-8") + alias_bomb(12), encoding="utf-8")

    assert await watcher.check(10.0) is None  # just changed: waits to settle
    outcome = await watcher.check(11.0)

    assert outcome == "refused"
    assert len(loaded_on) == 1
    assert loaded_on[0] != threading.get_ident()  # a worker thread, not the event loop's
    [error] = [e for e in published if isinstance(e, ErrorRaised)]
    assert error.code == "config.refused"
    assert f"version {before} stays in force" in error.message
    assert "an alias bomb?" in error.message
    assert live.version == before
