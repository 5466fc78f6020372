"""The garbage collector during a batch run (a backtest): what was loaded stays out of its way."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loaded_out_of_gc() -> Iterator[None]:
    """While a batch run goes on, keep everything alive at its start (the code, the settings,
    the loaded bars) out of the garbage collector's full passes, which otherwise walk it all each
    time the days' new objects trigger one (0.1 s or more each here). Given back at the end, so
    a process running many (the tests) collects what became garbage meanwhile."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
