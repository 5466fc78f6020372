"""Splits from Alpaca's corporate actions (`GET /v1/corporate-actions`, the market data API).

An answer holds `corporate_actions.forward_splits` and `.reverse_splits`, each row with `symbol`,
`new_rate`, `old_rate` (new shares for old, possibly fractional: 3:2 is 1.5 for 1) and `ex_date`
(the session the price re-scales: the split's `session`). A row that does not read as a split is
skipped with a warning naming it, as Yahoo's split events are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

import structlog

from fin_agent.domain.errors import DataError
from fin_agent.domain.splits import Split
from fin_agent.domain.values import symbol

log = structlog.get_logger(__name__)
SPLIT_TYPES = ("forward_split", "reverse_split")
_KINDS = ("forward_splits", "reverse_splits")


def parse_splits(body: Any) -> list[Split]:
    """The splits of one page of `/v1/corporate-actions` (types forward_split, reverse_split)."""
    if not isinstance(body, Mapping):
        raise DataError(
            "Alpaca corporate actions did not answer an object: check broker.alpaca.data_url"
        )
    actions = body.get("corporate_actions") or {}
    found: list[Split] = []
    for kind in _KINDS:
        for row in actions.get(kind) or ():
            try:
                ratio = Fraction(Decimal(str(row["new_rate"]))) / Fraction(
                    Decimal(str(row["old_rate"]))
                )
                ex_date = date.fromisoformat(str(row["ex_date"]))
                found.append(Split.of_ratio(symbol(str(row["symbol"])), ex_date, ratio))
            except (
                AttributeError,
                KeyError,
                TypeError,
                ValueError,
                ArithmeticError,
                DataError,
            ) as e:
                log.warning("alpaca_split_skipped", split_event=str(row)[:200], error=str(e))
    return found
