"""Pausing Python's cyclic garbage collector around bulk work (a file of 100,000 rows, a batch of orders).

Bulk intake and validation allocate millions of small objects (rows, cells, order
lines, decoded orders) that all stay alive until the batch is stored; the cyclic
collector would walk them again and again and find nothing to free (a fifth of
an intake run). ``paused_gc()`` switches it off for the block; reference counting
still frees every object the moment it is no longer used, and the collector
runs as usual again once the last paused block (of any thread) has ended.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block (nested and concurrent blocks allowed); the previous setting after."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
