"""The `optimize` section: what `fin-agent optimize` searches, how it scores, how it walks forward.

The search space names strategy settings by their dotted path (`scan.gap_min_pct`); each is
checked against the settings' own fields, so a typo or a non-numeric key is refused at load.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

from fin_agent.app.config.problems import ConfigProblem, model_of, problem, raise_if
from fin_agent.app.config.sections import SettingsSection
from fin_agent.app.config.sources import holds

TUNABLE_SECTIONS = ("scan", "plan", "risk", "execution")
"""Sections a search space may tune: the strategy's (the strategy version's hash covers them)."""


class ParamRange(SettingsSection):
    """One tuned setting: a float or int range (optionally stepped or logarithmic)."""

    type: Literal["float", "int"] = Field(
        default="float", description="float: any value in [low, high]; int: whole numbers."
    )
    low: float = Field(ge=-1e12, le=1e12, description="Smallest value tried.")
    high: float = Field(ge=-1e12, le=1e12, description="Largest value tried.")
    step: float | None = Field(
        default=None, gt=0, le=1e12, description="Spacing of the values tried; null: continuous."
    )
    log: bool = Field(default=False, description="Sample on a log scale (low must be above 0).")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = []
        if self.high <= self.low:
            problems.append(
                problem(
                    ("high",), f"high ({self.high}) must be above low ({self.low})", "swap them"
                )
            )
        if self.log and (self.low <= 0 or self.step is not None):
            problems.append(
                problem(
                    ("log",),
                    "a log scale needs low above 0 and no step",
                    "set log: false, or make low positive and drop step",
                )
            )
        if self.type == "int" and (
            self.low != int(self.low)
            or self.high != int(self.high)
            or (self.step is not None and self.step != int(self.step))
        ):
            problems.append(
                problem(("type",), "an int range needs whole low, high and step", "round them")
            )
        raise_if(problems)
        return self


class OptimizeSettings(SettingsSection):
    """`fin-agent optimize`: the study, its objective, walk-forward windows and search space."""

    study: str = Field(
        default="gap_and_go",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="Study name: its storage and its folder under data_dir/optimize; the same "
        "name resumes the study.",
    )
    objective: Literal["net_pnl", "sharpe", "expectancy"] = Field(
        default="net_pnl",
        description="What a window scores: net P&L (USD), Sharpe of the daily returns, or "
        "expectancy (mean R multiple). Maximised.",
    )
    min_trades: int = Field(
        default=1,
        ge=0,
        le=100_000,
        description="Fewest trades a training window needs for its score to count; fewer prunes "
        "the trial (reason too_few_trades).",
    )
    train_days: int = Field(
        default=20, ge=1, le=5_000, description="Sessions in a walk-forward training window."
    )
    test_days: int = Field(
        default=5,
        ge=1,
        le=5_000,
        description="Sessions in the test window after each training window; windows roll "
        "forward by this many sessions.",
    )
    seed: int = Field(default=42, ge=0, le=2**32 - 1, description="The sampler's random seed.")
    startup_trials: int = Field(
        default=10, ge=1, le=10_000, description="Random trials before the TPE sampler steers."
    )
    pruner: Literal["median", "none"] = Field(
        default="median",
        description="median: stop a trial whose mean training score after a window is below "
        "the median of earlier trials at that window; none: run every trial to the end.",
    )
    space: dict[str, ParamRange] = Field(
        default_factory=lambda: {
            "scan.gap_min_pct": ParamRange(low=1, high=8, step=0.5),
            "plan.atr_stop_multiple": ParamRange(low=0.25, high=1.5, step=0.05),
            "plan.reward_risk": ParamRange(low=1, high=4, step=0.25),
        },
        min_length=1,
        max_length=50,
        description="Tuned settings by dotted path (scan., plan., risk., execution.) and their "
        "ranges.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[ConfigProblem] = [
            problem(
                ("space", path),
                f"{path} is not in a tunable section",
                f"name a setting as <section>.<key> with the section one of "
                f"{', '.join(TUNABLE_SECTIONS)} (for example scan.gap_min_pct)",
            )
            for path in self.space
            if path.split(".", 1)[0] not in TUNABLE_SECTIONS or "." not in path
        ]
        if self.objective == "sharpe" and min(self.train_days, self.test_days) < 2:
            problems.append(
                problem(
                    ("objective",),
                    "a Sharpe ratio needs at least two daily returns in every window",
                    "set optimize.train_days and optimize.test_days to 2 or more",
                )
            )
        raise_if(problems)
        return self


def space_problems(
    settings_cls: type[BaseModel], optimize: OptimizeSettings
) -> list[ConfigProblem]:
    """A problem for each tuned path that is not a numeric setting of `settings_cls`."""
    problems = []
    for path in optimize.space:
        section_name, _, key = path.partition(".")
        section_info = settings_cls.model_fields.get(section_name)
        section = model_of(section_info.annotation) if section_info is not None else None
        info = section.model_fields.get(key) if section is not None else None
        if section is None or info is None:
            if section_name not in TUNABLE_SECTIONS:
                continue  # OptimizeSettings refused it already
            keys = sorted(section.model_fields) if section is not None else []
            problems.append(
                problem(
                    ("optimize", "space", path),
                    f"{path} is not a setting",
                    f"name one of {section_name}.{{{', '.join(keys)}}}",
                )
            )
        elif not any(holds(info.annotation, kind) for kind in (int, float, Decimal)) or holds(
            info.annotation, bool
        ):
            problems.append(
                problem(
                    ("optimize", "space", path),
                    f"{path} is not a number",
                    "tune only numeric settings (thresholds, multiples, percentages)",
                )
            )
    return problems
