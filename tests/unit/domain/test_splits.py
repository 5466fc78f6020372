"""`Split`: a source's split event as a value: its label, its price factor, and what it refuses."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from fin_agent.domain.errors import DataError
from fin_agent.domain.splits import Split
from fin_agent.domain.values import symbol

AAPL = symbol("AAPL")
DAY = date(2014, 6, 9)


def test_a_forward_split_divides_earlier_prices() -> None:
    split = Split.of_ratio(AAPL, DAY, Fraction(7))

    assert (split.new_shares, split.old_shares, split.label) == (7, 1, "7:1")
    assert split.price_factor == Fraction(1, 7)


def test_a_reverse_split_multiplies_earlier_prices() -> None:
    split = Split.of_ratio(AAPL, DAY, Fraction(2, 20))  # kept in lowest terms

    assert (split.label, split.price_factor) == ("1:10", Fraction(10))


@pytest.mark.parametrize(("new", "old"), [(0, 1), (1, 0), (-2, 1), (1, 1)])
def test_what_is_not_a_split_is_refused(new: int, old: int) -> None:
    with pytest.raises(DataError, match=r"split of AAPL on 2014-06-09: .*(event|drop the event)"):
        Split(symbol=AAPL, session=DAY, new_shares=new, old_shares=old)


def test_a_ratio_that_is_not_positive_is_refused() -> None:
    with pytest.raises(DataError, match="ratio 0 is not positive"):
        Split.of_ratio(AAPL, DAY, Fraction(0))
