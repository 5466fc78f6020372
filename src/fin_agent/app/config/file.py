"""Reading config.yaml: its base values, its profile overlays, the line of each key, problems.

Broken YAML, duplicate keys, secrets and unknown overlay keys become problems, never exceptions;
relative paths written in the file are taken from the file's folder. A file above 1 MiB, nested
too deeply, or whose aliases refer to themselves or expand past `MAX_ALIAS_NODES` (an alias bomb)
is refused before it is built into values, so a hostile file costs milliseconds, not gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from fin_agent.app.config.problems import ConfigProblem, Loc, model_of, show, unknown_key
from fin_agent.app.config.sources import (
    DEFAULT_SECRETS_DIR,
    ENV_PREFIX,
    SettingsLayer,
    complete_job_overrides,
    holds,
    secret_fields,
)

PROFILES = ("dev", "paper", "prod")
PROFILES_KEY = "profiles"
MAX_CONFIG_BYTES = 1024 * 1024
"""A config file is a few kilobytes: anything above 1 MiB is refused unread."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted (config.yaml needs about 5)."""
MAX_ALIAS_NODES = 10_000
"""Most YAML nodes that aliases (`*name`) may add by repeating what their anchor holds."""


@dataclass(slots=True, kw_only=True)
class ConfigFile:
    """config.yaml as read: its base values, its profile overlays, key lines and problems."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    readable: bool = True

    def base_layer(self, settings_cls: type[BaseSettings]) -> SettingsLayer:
        """The file's values without the profile overlays."""
        origins = {loc: f"in {self.path.name} line {line}" for loc, line in self.lines.items()}
        return SettingsLayer(settings_cls, data=self.data, origins=origins)

    def profile_layer(self, settings_cls: type[BaseSettings], profile: object) -> SettingsLayer:
        """The overlay of `profile` from the file's `profiles:` mapping (empty when it has none)."""
        if not isinstance(profile, str) or profile not in self.profiles:
            return SettingsLayer(settings_cls)
        prefix = (PROFILES_KEY, profile)
        origins = {
            loc[2:]: f"in profiles.{profile}, {self.path.name} line {line}"
            for loc, line in self.lines.items()
            if loc[:2] == prefix and len(loc) > 2
        }
        return SettingsLayer(settings_cls, data=self.profiles[profile], origins=origins)

    def overlay_layer(self, settings_cls: type[BaseSettings]) -> SettingsLayer:
        """This file's values as an overlay layer, each key's origin naming the overlay."""
        origins = {loc: f"in overlay {self.path} line {line}" for loc, line in self.lines.items()}
        return SettingsLayer(settings_cls, data=self.data, origins=origins)


class _TooDeepError(yaml.MarkedYAMLError):
    """The document nests mappings and lists deeper than `MAX_DEPTH`."""


class _TextKeyLoader(yaml.SafeLoader):
    """Reads every mapping key as the text written: `on:` stays "on", `1:` stays "1".

    Composing refuses nesting deeper than `MAX_DEPTH` (PyYAML recurses once per level).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Compose one node, counting how deep it sits."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = parent.start_mark if parent is not None else self.get_mark()
                raise _TooDeepError(
                    problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping whose keys are the text written (merge keys `<<` still apply)."""
        self.flatten_mapping(node)
        return {
            (
                str(key_node.value)
                if isinstance(key_node, yaml.ScalarNode)
                else str(self.construct_object(key_node, deep=True))
            ): self.construct_object(value_node, deep=deep)
            for key_node, value_node in node.value
        }


def _file_problem(path: Path, what: str, fix: str) -> ConfigProblem:
    return ConfigProblem(loc=(str(path),), what=what, fix=fix)


def read_config_file(path: Path, settings_cls: type[BaseSettings]) -> ConfigFile:
    """Read and pre-check config.yaml; problems are collected in the result, never raised."""
    result = ConfigFile(path=path)
    example = "the repo's config.yaml is a complete example"
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)  # never more: the file may be anything
        if len(raw) > MAX_CONFIG_BYTES:
            fix = (
                "point --config or FIN_AGENT_CONFIG at config.yaml; a config file is a few "
                "kilobytes (long lists such as scan.universe fit well within the limit)"
            )
            return _unreadable(result, "is larger than the 1 MiB a config file may be", fix)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        fix = f"create it ({example}) or point FIN_AGENT_CONFIG or --config at the right file"
        return _unreadable(result, "file not found", fix)
    except IsADirectoryError:
        return _unreadable(result, "is a directory, not a file", "point it at config.yaml")
    except UnicodeDecodeError:
        return _unreadable(result, "is not UTF-8 text", "save it as UTF-8")
    except OSError as exc:
        fix = "check the file's permissions"
        return _unreadable(result, f"cannot be read ({exc.strerror})", fix)
    loader = _TextKeyLoader(text)
    try:
        node = loader.get_single_node()
        aliases = _alias_problem(node) if node is not None else None
        if aliases is not None:
            return _unreadable(result, *aliases)
        data = loader.construct_document(node) if node is not None else None
    except _TooDeepError as exc:
        fix = "write the settings as config.yaml does: sections of keys, a few levels deep"
        return _unreadable(result, f"{exc.problem}{_where(exc)}", fix)
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "unreadable"
        fix = "check the indentation and quoting around that line"
        return _unreadable(result, f"broken YAML{_where(exc)}: {problem}", fix)
    except yaml.YAMLError as exc:
        return _unreadable(result, f"broken YAML: {exc}", "check the file's syntax")
    finally:
        loader.dispose()
    if node is None:
        return _unreadable(result, "the file is empty", f"write the settings into it ({example})")
    if not isinstance(data, dict):
        fix = f"write `key: value` lines at the top level ({example})"
        return _unreadable(result, f"expected a mapping of keys, got {show(data)}", fix)
    _index(node, (), result)
    secrets = secret_fields(settings_cls)
    result.problems.extend(_refuse_secrets(data, (), secrets, result))
    raw_profiles = data.pop(PROFILES_KEY, None)
    base_dir = path.absolute().parent
    _resolve_paths(data, settings_cls, base_dir)
    result.data = data
    result.profiles = _read_profiles(raw_profiles, settings_cls, base_dir, secrets, result)
    return result


def _where(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _alias_problem(root: yaml.Node) -> tuple[str, str] | None:
    """What is wrong with the document's aliases, and the fix: an alias inside its own anchor,
    or aliases that repeat more than `MAX_ALIAS_NODES` nodes; None when they are fine.

    Sizes are counted once per node (memoised), without recursion, so an alias bomb costs a walk
    over the nodes as written, never over the tree they expand to.
    """
    size: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            ancestors.discard(key)
            size[key] = 1 + sum(size[id(child)] for child in _children(node))
            continue
        if key in size:
            continue
        if key in ancestors:
            line = node.start_mark.line + 1
            return (
                f"the YAML anchor (&name) at line {line} holds an alias (*name) to itself, "
                "which would never end",
                "remove that alias (*name) or move it out of its anchor (&name)",
            )
        ancestors.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    added = size[id(root)] - len(size)
    if added > MAX_ALIAS_NODES:
        return (
            f"YAML aliases (*name) repeat {added:,} values, above the limit of "
            f"{MAX_ALIAS_NODES:,} (an alias bomb?)",
            "write the values out instead of repeating large anchors (&name) many times",
        )
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _unreadable(result: ConfigFile, what: str, fix: str) -> ConfigFile:
    result.problems.append(_file_problem(result.path, what, fix))
    result.readable = False
    return result


def _index(node: yaml.Node, loc: Loc, result: ConfigFile) -> None:
    """Record the line of every key and refuse keys that appear twice in one mapping."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if key in seen:
                result.problems.append(
                    ConfigProblem(
                        loc=(*loc, key),
                        what=f"set twice (lines {seen[key]} and {line})",
                        fix="keep only one of them",
                    )
                )
            seen[key] = line
            result.lines[(*loc, key)] = line
            _index(value_node, (*loc, key), result)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            result.lines[(*loc, index)] = item.start_mark.line + 1
            _index(item, (*loc, index), result)


def _refuse_secrets(
    data: dict[Any, Any], prefix: Loc, secrets: frozenset[str], result: ConfigFile
) -> list[ConfigProblem]:
    problems = []
    for name in sorted(secrets & {k for k in data if isinstance(k, str)}):
        del data[name]
        line = result.lines.get((*prefix, name))
        problems.append(
            ConfigProblem(
                loc=(*prefix, name),
                what="secrets are not accepted in config.yaml",
                fix=(
                    f"delete it and set the environment variable {ENV_PREFIX}{name.upper()} "
                    f"or write the value to a file named {name} in secrets_dir "
                    f"(default {DEFAULT_SECRETS_DIR})"
                ),
                origin=f"in {result.path.name} line {line}" if line else None,
            )
        )
    return problems


def _read_profiles(
    raw: object,
    settings_cls: type[BaseSettings],
    base_dir: Path,
    secrets: frozenset[str],
    result: ConfigFile,
) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        result.problems.append(
            ConfigProblem(
                loc=(PROFILES_KEY,),
                what=f"expected a mapping of profile name to overrides, got {show(raw)}",
                fix=f"indent one mapping of overrides per profile below it ({', '.join(PROFILES)})",
            )
        )
        return {}
    overlays: dict[str, dict[str, Any]] = {}
    for name, overlay in raw.items():
        loc: Loc = (PROFILES_KEY, str(name))
        if name not in PROFILES:
            result.problems.append(unknown_key(loc, PROFILES, what="unknown profile"))
            continue
        if overlay is None:
            overlays[name] = {}
            continue
        if not isinstance(overlay, dict):
            result.problems.append(
                ConfigProblem(
                    loc=loc,
                    what=f"expected a mapping of overrides, got {show(overlay)}",
                    fix="indent the keys this profile changes below it, e.g. `scan: {top_n: 3}`",
                )
            )
            continue
        for key in ("profile", PROFILES_KEY):
            if key in overlay:
                del overlay[key]
                result.problems.append(
                    ConfigProblem(
                        loc=(*loc, key),
                        what="a profile overlay cannot choose a profile",
                        fix="delete it; choose the profile with --profile, FIN_AGENT_PROFILE or "
                        "the top-level profile key",
                    )
                )
        result.problems.extend(_refuse_secrets(overlay, loc, secrets, result))
        result.problems.extend(_strip_unknown(overlay, settings_cls, loc, secrets))
        _resolve_paths(overlay, settings_cls, base_dir)
        complete_job_overrides(overlay)
        overlays[name] = overlay
    return overlays


def _strip_unknown(
    data: dict[Any, Any], model: type[BaseModel], loc: Loc, hidden: frozenset[str]
) -> list[ConfigProblem]:
    """Remove and report unknown keys, so that every overlay is checked, used or not."""
    problems: list[ConfigProblem] = []
    for key in list(data):
        if not isinstance(key, str) or key not in model.model_fields:
            problems.append(unknown_key((*loc, str(key)), set(model.model_fields) - hidden))
            del data[key]
            continue
        section = model_of(model.model_fields[key].annotation)
        if section is not None and isinstance(data[key], dict):
            problems.extend(_strip_unknown(data[key], section, (*loc, key), frozenset()))
    return problems


def _resolve_paths(data: dict[Any, Any], model: type[BaseModel], base_dir: Path) -> None:
    """Make relative paths written in config.yaml relative to the file's folder, not the cwd."""
    for key, value in data.items():
        info = model.model_fields.get(key) if isinstance(key, str) else None
        if info is None:
            continue
        section = model_of(info.annotation)
        if section is not None and isinstance(value, dict):
            _resolve_paths(value, section, base_dir)
        elif holds(info.annotation, Path) and isinstance(value, list):
            data[key] = [_resolve(item, base_dir) for item in value]
        elif holds(info.annotation, Path):
            data[key] = _resolve(value, base_dir)


def _resolve(value: object, base_dir: Path) -> object:
    if not isinstance(value, str) or not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base_dir / path)


def read_overlay(path: Path, settings_cls: type[BaseSettings]) -> ConfigFile:
    """An overlay file (`--config` after a command; `fin-agent optimize` writes them): keys
    set over the base config. Unknown keys and `profiles:` are refused as problems, never
    ignored, so a mistyped key cannot leave a setting silently unchanged."""
    result = read_config_file(path, settings_cls)
    if not result.readable:
        return result
    if (PROFILES_KEY,) in result.lines:
        result.problems.append(
            ConfigProblem(
                loc=(PROFILES_KEY,),
                what=f"an overlay ({path}) cannot hold profiles",
                fix="write the keys it changes at the top level, or move profiles to the base "
                "config",
                origin=f"in {path.name} line {result.lines[(PROFILES_KEY,)]}",
            )
        )
        result.profiles = {}
    for unknown in _strip_unknown(result.data, settings_cls, (), secret_fields(settings_cls)):
        line = result.lines.get(unknown.loc)
        result.problems.append(
            replace(unknown, origin=f"in overlay {path} line {line}" if line else None)
        )
    return result
