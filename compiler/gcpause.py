"""Pausing Python's cyclic garbage collector around graph-sized work.

Importing, rewriting and lowering allocate many small objects and free few; with the collector
on, its generation-2 passes rescan the whole heap again and again, which makes the cost grow
faster than the graph. Reference counting still frees everything acyclic meanwhile.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (re-entrant); usable as a decorator."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
