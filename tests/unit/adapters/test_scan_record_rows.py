"""The scan record's rows: a window's sessions as text and back, and the memo of bar objects."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from contract.test_scan_records_contract import HISTORY, WINDOW, snapshot
from fin_agent.adapters.storage.scan_record_rows import BarMemo, window_sessions, window_text


@given(st.lists(st.integers(min_value=1, max_value=400), max_size=60), st.dates())
def test_a_window_of_any_gaps_reads_back_its_sessions(gaps: list[int], first: date) -> None:
    sessions = [first]
    for gap in gaps:
        if sessions[-1] + timedelta(days=gap) > date.max - timedelta(days=400):
            break
        sessions.append(sessions[-1] + timedelta(days=gap))

    assert window_sessions(window_text(sessions)) == sessions


def test_a_window_text_is_the_first_session_then_each_gap() -> None:
    days = [date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6), date(2025, 1, 20)]

    assert window_text(days) == "2025-01-02:13(14)"
    assert window_text([]) == ""


def test_the_bar_memo_knows_reused_bar_objects_and_turns_off_for_new_ones() -> None:
    memo = BarMemo()
    first = snapshot(50)
    assert len(memo.unknown(first)) == 2 * WINDOW
    memo.learn(first, 1)
    reused = snapshot(51)  # HISTORY's objects again: all but the new bar of each symbol known
    assert len(memo.unknown(reused)) == 2
    memo.learn(reused, 2)
    copied = {s: [replace(b) for b in bars] for s, bars in HISTORY.items()}  # equal, not the same

    assert len(memo.unknown(snapshot(52, copied))) == 2 * WINDOW
    memo.learn(snapshot(52, copied), 3)
    assert memo.valid_at == 0  # off: a market of new objects gains nothing from it
    assert len(memo.unknown(snapshot(53))) == 2 * WINDOW
