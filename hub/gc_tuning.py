"""Garbage collection tuned for batch work.

Matching allocates many short-lived objects (a batch's candidates and their normal
forms) while the process holds many long-lived ones (name frequencies, caches of
normalised names). With CPython's default thresholds the collector runs every 700
allocations and often walks the long-lived heap: measured on the matching bench,
that more than doubled the cost of reading a batch's candidates. Reference
counting frees almost everything here; cycles are rare, so collecting them
seldom costs little memory.
"""

from __future__ import annotations

import gc

THRESHOLDS = (100_000, 50, 100)


def tune() -> None:
    """Collect seldom, and stop scanning what exists now (call once set up)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
