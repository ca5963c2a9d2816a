"""Peak memory of a call, for the tests that a crafted file cannot make strata allocate."""

from __future__ import annotations

import tracemalloc


def peak_bytes(fn) -> int:
    """The most bytes Python allocated at once while ``fn()`` ran."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak
