"""The search space of `optimize.space` as Optuna distributions, and a trial's parameters as
the nested settings they override (the same shape an overlay file holds)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from fin_agent.app.config.optimize import OptimizeSettings


def distributions(optimize: OptimizeSettings) -> dict[str, BaseDistribution]:
    """One distribution per tuned setting, keyed by its dotted path."""
    out: dict[str, BaseDistribution] = {}
    for path, spec in optimize.space.items():
        if spec.type == "int":
            step = int(spec.step) if spec.step is not None else 1
            out[path] = IntDistribution(int(spec.low), int(spec.high), log=spec.log, step=step)
        else:
            out[path] = FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
    return out


def overrides(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`{"scan.gap_min_pct": 2.5}` as `{"scan": {"gap_min_pct": 2.5}}`; floats on a step are
    rounded to 10 digits, so 0.30000000000000004 is written 0.3."""
    nested: dict[str, dict[str, Any]] = {}
    for path, value in sorted(params.items()):
        section, _, key = path.partition(".")
        written = round(value, 10) if isinstance(value, float) else value
        nested.setdefault(section, {})[key] = written
    return nested


def overlay_text(params: Mapping[str, Any], header: str) -> str:
    """A config overlay holding `params`, with `header` as its leading comment lines."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.safe_dump(overrides(params), sort_keys=True, default_flow_style=False)
