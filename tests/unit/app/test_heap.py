"""A batch run keeps what it loaded out of the collector's full passes, and gives it back."""

from __future__ import annotations

import gc

import pytest

from fin_agent.app.heap import loaded_out_of_gc


class Loop:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_loaded_out_of_gc_freezes_what_is_alive_and_gives_it_back() -> None:
    before = gc.get_freeze_count()

    with loaded_out_of_gc():
        frozen = gc.get_freeze_count()

    assert frozen > before
    assert gc.get_freeze_count() == 0


def test_garbage_frozen_during_a_run_is_collected_after_it() -> None:
    loop = Loop()
    alive = [loop]

    with loaded_out_of_gc():
        alive.clear()
        del loop
    found = gc.collect()

    assert found > 0


def test_loaded_out_of_gc_gives_back_when_the_run_raises() -> None:
    with pytest.raises(RuntimeError, match="the day failed"), loaded_out_of_gc():
        raise RuntimeError("the day failed")

    assert gc.get_freeze_count() == 0
