"""Giving the memory of freed bar columns back to the operating system.

A day's minute bars are a few large arrays among the many small objects a backtest keeps; once
freed, glibc's heap keeps their pages (the small objects pin it), so the resident set would grow
with the days read although the live data does not. `release_freed` returns those pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any

import pyarrow as pa

__all__ = ["release_freed"]


def release_freed() -> None:
    """Return freed heap pages (glibc's `malloc_trim`, where there is one) and Arrow's unused
    pool memory to the operating system."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None
