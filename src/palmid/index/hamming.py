"""The small thread pool (and its row split) that the fast index's native kernels (:mod:`palmid.index.kernels`)
run on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import pairwise

import numpy as np

__all__ = ["MAX_SCAN_THREADS", "scan_pool", "split_rows"]

MAX_SCAN_THREADS = 2
"""Threads one search's scans are split over (the kernels release the GIL); more rarely pays on a busy server."""


def split_rows(rows: int, threads: int, *, minimum: int) -> list[slice]:
    """``rows`` cut into at most ``threads`` contiguous parts of at least ``minimum`` rows (one part if small)."""
    parts = max(1, min(threads, rows // max(1, minimum)))
    edges = np.linspace(0, rows, parts + 1).astype(np.int64)
    return [slice(int(a), int(b)) for a, b in pairwise(edges.tolist())]


@cache
def scan_pool() -> ThreadPoolExecutor:
    """Threads shared by every index's parallel scans (made on first use, never at import)."""
    return ThreadPoolExecutor(max_workers=MAX_SCAN_THREADS, thread_name_prefix="palmid-index-scan")
