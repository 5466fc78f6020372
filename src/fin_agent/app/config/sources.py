"""Settings layers: pydantic-settings sources for the environment, secret files and arguments.

Each layer keeps the problems met while reading it and where it set each key (a line of
config.yaml, a variable, a secret file), so that error messages point at the right place.
"""

from __future__ import annotations

import copy
import json
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from fin_agent.app.config.problems import ConfigProblem, Loc, field_at, model_of, unknown_key

ENV_PREFIX = "FIN_AGENT_"
NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "FIN_AGENT_CONFIG"
PROFILE_ENV_VAR = "FIN_AGENT_PROFILE"
SECRETS_DIR_ENV_VAR = "FIN_AGENT_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")
_NULL_WORDS = frozenset({"null", "none"})


class SettingsLayer(PydanticBaseSettingsSource):
    """A settings source over values already read, with its problems and where it set each key."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *,
        data: dict[str, Any] | None = None,
        origins: Mapping[Loc, str] | None = None,
        problems: Sequence[ConfigProblem] = (),
    ) -> None:
        super().__init__(settings_cls)
        self.data: dict[str, Any] = data if data is not None else {}
        self.origins: dict[Loc, str] = dict(origins or {})
        self.problems: list[ConfigProblem] = list(problems)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The top-level value of `field_name` (pydantic-settings' source protocol)."""
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        """A copy of the layer's values, for pydantic-settings to merge by precedence."""
        return copy.deepcopy(self.data)

    def origin(self, loc: Loc) -> str | None:
        """Where this layer set the value at `loc` ("in config.yaml line 3"), or None."""
        node: object = self.data
        for part in loc:
            node = _child(node, part)
            if node is _MISSING:
                return None
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.origins:
                return self.origins[loc[:end]]
        return None


_MISSING = object()


def _child(node: object, part: str | int) -> object:
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _MISSING


def secret_fields(settings_cls: type[BaseModel]) -> frozenset[str]:
    """Names of the top-level fields that hold secrets (never accepted from config.yaml)."""
    return frozenset(
        name
        for name, info in settings_cls.model_fields.items()
        if holds(info.annotation, SecretStr)
    )


def holds(annotation: Any, kind: type) -> bool:
    """Whether `annotation` is `kind` or holds it (in Optional, Annotated or list)."""
    if annotation is kind:
        return True
    origin = get_origin(annotation)
    if origin in (Annotated, Union, types.UnionType, list):
        return any(holds(arg, kind) for arg in get_args(annotation))
    return False


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is list:
        return True
    if origin is Annotated or origin is Union or origin is types.UnionType:
        return any(_is_list(arg) for arg in get_args(annotation))
    return False


def complete_job_overrides(data: dict[str, Any]) -> None:
    """A layer that sets one of a job's `cron`/`at` clears the other one of the layers below."""
    schedule = data.get("schedule")
    jobs = schedule.get("jobs") if isinstance(schedule, dict) else None
    if not isinstance(jobs, dict):
        return
    for job in jobs.values():
        if isinstance(job, dict) and ("cron" in job) != ("at" in job):
            job.setdefault("cron", None)
            job.setdefault("at", None)


def environ_layer(settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> SettingsLayer:
    """`FIN_AGENT_<SECTION>__<KEY>` and `FIN_AGENT_<KEY>` variables; empty ones count as unset.

    Unknown top-level names are left alone (other tools may share the prefix); an unknown section
    is refused. Lists are JSON (`["AAPL","MSFT"]`) or comma-separated (`AAPL,MSFT`).
    """
    layer = SettingsLayer(settings_cls)
    fields = settings_cls.model_fields
    sections = {name for name, info in fields.items() if model_of(info.annotation) is not None}
    for name, value in sorted(environ.items()):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper == CONFIG_ENV_VAR or value == "":
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER)
        loc: Loc = tuple(parts)
        if not all(parts):
            layer.problems.append(
                ConfigProblem(
                    loc=(name,),
                    what="has an empty part between its __ delimiters",
                    fix="write FIN_AGENT_<SECTION>__<KEY>, e.g. FIN_AGENT_SCAN__GAP_MIN_PCT",
                )
            )
            continue
        if parts[0] not in fields:
            if len(parts) > 1:
                layer.problems.append(
                    unknown_key(loc[:1], sections, what=f"unknown section in {name}")
                )
            continue
        if len(parts) == 1 and parts[0] in sections:
            layer.problems.append(
                ConfigProblem(
                    loc=loc,
                    what=f"{name} sets a whole section",
                    fix=f"set its keys one by one as {upper}{NESTED_DELIMITER}<KEY>",
                )
            )
            continue
        parsed = _parse_env_value(field_at(settings_cls, loc), value, name, layer)
        if _set_nested(layer.data, loc, parsed):
            layer.origins[loc] = f"by {name}"
        else:
            layer.problems.append(
                ConfigProblem(
                    loc=loc,
                    what=f"{name} conflicts with another variable that sets a value above it",
                    fix="unset one of them",
                )
            )
    complete_job_overrides(layer.data)
    return layer


def _parse_env_value(info: FieldInfo | None, value: str, name: str, layer: SettingsLayer) -> object:
    if info is None:
        return value
    if value.strip().lower() in _NULL_WORDS and not info.is_required() and info.default is None:
        return None
    if not _is_list(info.annotation):
        return value
    if not value.lstrip().startswith("["):
        return [item.strip() for item in value.split(",") if item.strip()]
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        layer.problems.append(
            ConfigProblem(
                loc=(name,),
                what=f"is not a valid JSON list ({exc.msg} at character {exc.pos})",
                fix='write a JSON list such as ["AAPL", "MSFT"] or a comma-separated AAPL,MSFT',
            )
        )
        return []


def _set_nested(data: dict[str, Any], loc: Loc, value: object) -> bool:
    node = data
    for part in loc[:-1]:
        child = node.setdefault(str(part), {})
        if not isinstance(child, dict):
            return False
        node = child
    if isinstance(node.get(str(loc[-1])), dict):
        return False
    node[str(loc[-1])] = value
    return True


def secrets_layer(settings_cls: type[BaseSettings], directory: Path) -> SettingsLayer:
    """One file per secret, named after its field (`finnhub_api_key`); no folder is fine."""
    layer = SettingsLayer(settings_cls)
    try:
        if not directory.exists():
            return layer
        if not directory.is_dir():
            layer.problems.append(
                ConfigProblem(
                    loc=("secrets_dir",),
                    what=f"{directory} is not a directory",
                    fix="point secrets_dir or FIN_AGENT_SECRETS_DIR at the folder of secret files",
                )
            )
            return layer
    except OSError as exc:
        what = f"{directory} cannot be read ({exc.strerror})"
        layer.problems.append(
            ConfigProblem(loc=("secrets_dir",), what=what, fix="check its permissions")
        )
        return layer
    for name in sorted(secret_fields(settings_cls)):
        path = directory / name
        try:
            if not path.exists():
                continue
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            layer.problems.append(
                ConfigProblem(
                    loc=(name,),
                    what=f"secret file {path} cannot be read ({reason})",
                    fix="make it a readable UTF-8 text file that holds only the value",
                )
            )
            continue
        if not text:
            layer.problems.append(
                ConfigProblem(
                    loc=(name,),
                    what=f"secret file {path} is empty",
                    fix="write the value into it or delete the file",
                )
            )
            continue
        layer.data[name] = text
        layer.origins[(name,)] = f"by secret file {path}"
    return layer


def arguments_layer(
    settings_cls: type[BaseSettings], *, profile: str | None, secrets_dir: Path | None
) -> SettingsLayer:
    """Values passed to `load_settings` by the caller (the CLI's --profile): the highest layer."""
    layer = SettingsLayer(settings_cls)
    if profile:
        layer.data["profile"] = profile
        layer.origins[("profile",)] = "by the profile argument"
    if secrets_dir is not None:
        layer.data["secrets_dir"] = str(secrets_dir)
        layer.origins[("secrets_dir",)] = "by the secrets_dir argument"
    return layer
