"""The cyclic garbage collector during bulk work (imports, simulations).

An import allocates millions of short-lived containers while the application's own objects
(modules, models, metadata: several hundred thousand) stay put. With the default thresholds
the collector runs a full collection every few thousand orders and walks all of them each
time, which cost about half of the CPU time of preparing and evaluating the orders of a large
import. ``bulk_work`` moves what exists at its start out of the collector's reach
(``gc.freeze``) and collects the young generation less often; both are undone at the end.
Reference cycles are still collected, so memory stays flat.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# young-generation threshold during bulk work: a batch's objects live until it is booked
BULK_THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def bulk_work() -> Iterator[None]:
    """Collect less often while the block runs (nested and concurrent uses share one
    setting; the last to leave restores the previous one)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(BULK_THRESHOLD, _saved[1], _saved[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                gc.unfreeze()
                _saved = None
