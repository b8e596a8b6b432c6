"""Process tuning for a long-running server: the cyclic garbage collector.

Each request allocates thousands of short-lived containers (the parsed body, the canonical request)
that reference counting frees. At CPython's default gen-0 threshold of 700 the cyclic collector ran
several times per request for nothing; raising it cut CPU per request by about 7%
(``bench/run.py --variant``, see bench/README.md).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["GC_THRESHOLDS", "tuned_for_serving"]

GC_THRESHOLDS = (50_000, 20, 100)


@contextlib.contextmanager
def tuned_for_serving() -> Iterator[None]:
    """While the server runs: start-up objects frozen out of the collector's scans and higher
    collector thresholds. Both are restored on exit (tests run many apps in one process)."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
