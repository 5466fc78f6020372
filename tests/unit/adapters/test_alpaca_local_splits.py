"""The local Alpaca server's simulated splits: a 2:1 and a 1:10 from the seed, reported by the
corporate actions of a range holding their ex-date, and bars served adjusted only once the served
day has reached it (prices times old/new shares, volumes the inverse), as Alpaca's
`adjustment=split` serves them; the pre-market of the ex-date on the new scale."""

from __future__ import annotations

from datetime import date

from fin_agent.adapters.broker.alpaca_local.market_data import SimulatedUniverse

EX = date(2026, 12, 4)
EVE = date(2026, 12, 3)


def test_the_splits_are_the_seeds_and_reported_in_a_range_holding_the_ex_date() -> None:
    market = SimulatedUniverse(500, seed=3, day=EX)
    assert sorted(market.splits.values()) == [(1, 10), (2, 1)]
    assert market.splits == SimulatedUniverse(500, seed=3, day=EVE, split_day=EX).splits
    actions = market.corporate_actions(EVE, EX)
    assert [
        (a["symbol"], a["new_rate"], a["old_rate"], a["ex_date"])
        for a in actions["forward_splits"] + actions["reverse_splits"]
    ] == sorted(
        [(s, n, o, "2026-12-04") for s, (n, o) in market.splits.items()],
        key=lambda row: row[1] < row[2],
    )
    assert market.corporate_actions(date(2026, 11, 1), EVE) == {
        "forward_splits": [],
        "reverse_splits": [],
    }


def test_bars_are_adjusted_from_the_ex_date_on_and_the_premarket_is_on_the_new_scale() -> None:
    after = SimulatedUniverse(500, seed=3, day=EX)
    before = SimulatedUniverse(500, seed=3, day=EVE, split_day=EX)
    for name, (new, old) in after.splits.items():
        adjusted = after.bars(name, date(2026, 11, 2), date(2026, 12, 2))
        raw = before.bars(name, date(2026, 11, 2), date(2026, 12, 2))
        assert [b["t"] for b in adjusted] == [b["t"] for b in raw]
        for a, r in zip(adjusted, raw, strict=True):
            assert abs(a["c"] - r["c"] * old / new) < 1e-3
            assert a["v"] == int(r["v"] * new / old)
        snapshot = after.snapshot(name)
        assert snapshot is not None
        prev = after.bars(name, EVE, EVE)[-1]["c"]
        assert abs(snapshot["latestTrade"]["p"] / prev - 1) < 0.02  # no gap on the new scale
        unsplit = SimulatedUniverse(500, seed=3, day=EX, split_day=date(2026, 12, 7))
        assert snapshot["prevDailyBar"]["c"] == unsplit.bars(name, EVE, EVE)[-1]["c"]  # as traded
        assert snapshot["prevDailyBar"]["c"] != prev
