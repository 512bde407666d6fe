"""The one timing loop every benchmark uses: call, time each call, in milliseconds.

``time.perf_counter`` around each single call, nothing else inside the timed region, so
the edge benchmark and the side-by-side comparison measure the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed_calls(fn: Callable[[], Any], n: int) -> list[float]:
    """Milliseconds taken by each of ``n`` calls of ``fn``, in order."""
    clock = time.perf_counter
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append((clock() - t0) * 1e3)
    return out
