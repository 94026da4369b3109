"""Pausing Python's cyclic garbage collector around the big loops of ingest and verify.

Both hold tens of thousands of live objects (sources, events, record digests)
and make almost no reference cycles. The collector would walk all of them
again and again as allocations pile up (seconds at 55,000 documents) to free
nothing; reference counting still frees everything that is dropped.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Cyclic garbage collection off for the block, restored after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
