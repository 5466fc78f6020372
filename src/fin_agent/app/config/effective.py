"""The effective settings as YAML, for `fin-agent config` and the dashboard: every secret, and every
password inside a URL, masked."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from fin_agent.app.config.settings import Settings
from fin_agent.app.config.urls import mask_urls_in

SECRET_MASK = "**********"  # noqa: S105 - the mask shown instead of a secret


class _YamlDumper(yaml.SafeDumper):
    """Writes Decimals as plain YAML numbers, exactly."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return dumper.represent_scalar("tag:yaml.org,2002:int", str(int(value)))
    return dumper.represent_scalar("tag:yaml.org,2002:float", format(value, "f"))


_YamlDumper.add_representer(Decimal, _represent_decimal)


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, SecretStr):
        return SECRET_MASK
    if isinstance(value, Enum):  # before str: a StrEnum is a str too
        return value.value
    if isinstance(value, str):
        return mask_urls_in(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, time):
        return f"{value:%H:%M}"
    return value


def render_effective(settings: Settings) -> str:
    """The effective settings as YAML; a set secret shows as '**********', an unset one as null,
    and so does a password inside a URL (`redis://:**********@host`)."""
    data: dict[str, Any] = {
        name: _plain(value) for name, value in settings.model_dump(mode="python").items()
    }
    data["schedule"]["jobs"] = {  # a job shows the one of cron/at it uses
        name: job.describe_mapping() for name, job in settings.schedule.jobs.items()
    }
    return yaml.dump(data, Dumper=_YamlDumper, sort_keys=False, allow_unicode=True)
