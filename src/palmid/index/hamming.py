"""Hamming kernels of the fast index: exhaustive scans (faiss popcount, GIL released), shift-searched minimum
distances, exact counting selection of the k smallest, and the small thread pool that splits one scan."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from palmid.templates.matching import hamming_distances

__all__ = [
    "MAX_SCAN_THREADS",
    "MIN_PARALLEL_ROWS",
    "hamming_scan",
    "min_hamming",
    "min_hamming_of_rows",
    "scan_pool",
    "scan_rows",
    "smallest",
    "split_rows",
]

MAX_SCAN_THREADS = 2
"""Threads one search's scans are split over (faiss releases the GIL); more rarely pays on a busy server."""
MIN_PARALLEL_ROWS = 65_536
"""Rows below which a scan stays on one thread (thread hand-off costs more than it saves)."""
_SAMPLED_SELECTION_ROWS = 65_536
_SAMPLE_STEP = 16


def hamming_scan(query: NDArray[np.uint8], codes: NDArray[np.uint8], n: int, out: NDArray[np.int32]) -> None:
    """``out[i] = hamming(query, codes[i])`` for the first ``n`` rows (faiss popcount kernel, releases the GIL)."""
    hamming_distances(query[None, :], codes[:n], out=out[:n].reshape(1, n))


def min_hamming(queries: NDArray[np.uint8], codes: NDArray[np.uint8]) -> NDArray[np.int32]:
    """``(len(codes),)`` smallest Hamming distance of each code row over the query rows (faiss popcount kernel)."""
    best: NDArray[np.int32] = hamming_distances(queries, codes).min(axis=0)
    return best


def smallest(distances: NDArray[np.int32], k: int) -> NDArray[np.int64]:
    """Rows of the ``k`` smallest distances (ascending row order; ties at the boundary broken by row), by counting.

    Exact. On large arrays a radius guessed from every 16th distance (with a margin) first cuts the rows to count
    to a few percent; when fewer than ``k`` rows lie within it, the whole array is counted instead.
    """
    if k >= distances.shape[0]:
        return np.arange(distances.shape[0], dtype=np.int64)
    if distances.shape[0] >= _SAMPLED_SELECTION_ROWS:
        sample = distances[::_SAMPLE_STEP]
        rank = min(sample.shape[0] - 1, 2 * (k // _SAMPLE_STEP) + 64)
        guess = int(np.partition(sample, rank)[rank])
        within = np.flatnonzero(distances <= guess)
        if within.shape[0] >= k:  # every row outside is farther than the k-th smallest
            return _smallest_of(within, distances[within], k)
    return _smallest_of(np.arange(distances.shape[0], dtype=np.int64), distances, k)


def _smallest_of(rows: NDArray[np.int64], distances: NDArray[np.int32], k: int) -> NDArray[np.int64]:
    counts = np.cumsum(np.bincount(distances))
    radius = int(np.searchsorted(counts, k))
    inside = rows[distances < radius]
    boundary = rows[distances == radius][: k - inside.shape[0]]
    return np.sort(np.concatenate([inside, boundary])).astype(np.int64)


def split_rows(rows: int, threads: int, *, minimum: int) -> list[slice]:
    """``rows`` cut into at most ``threads`` contiguous parts of at least ``minimum`` rows (one part if small)."""
    parts = max(1, min(threads, rows // max(1, minimum)))
    edges = np.linspace(0, rows, parts + 1).astype(np.int64)
    return [slice(int(a), int(b)) for a, b in pairwise(edges.tolist())]


@cache
def scan_pool() -> ThreadPoolExecutor:
    """Threads shared by every index's parallel scans (made on first use, never at import)."""
    return ThreadPoolExecutor(max_workers=MAX_SCAN_THREADS, thread_name_prefix="palmid-index-scan")


def scan_rows(query: NDArray[np.uint8], codes: NDArray[np.uint8], n: int, out: NDArray[np.int32], threads: int) -> None:
    """``hamming_scan`` of the first ``n`` rows, split over up to ``threads`` threads of :func:`scan_pool`."""
    parts = split_rows(n, threads, minimum=MIN_PARALLEL_ROWS)
    if len(parts) == 1:
        hamming_scan(query, codes, n, out)
        return

    def run(part: slice) -> None:
        hamming_scan(query, codes[part], part.stop - part.start, out[part])

    list(scan_pool().map(run, parts))


def min_hamming_of_rows(
    queries: NDArray[np.uint8], codes: NDArray[np.uint8], rows: NDArray[np.int64], width: int, threads: int
) -> NDArray[np.int32]:
    """``min_hamming`` of ``queries`` against the first ``width`` bytes of ``codes[rows]``, split over threads."""
    parts = split_rows(rows.shape[0], threads, minimum=MIN_PARALLEL_ROWS // 64)
    if len(parts) == 1:
        return min_hamming(queries, codes[rows, :width])
    out = np.empty(rows.shape[0], dtype=np.int32)

    def run(part: slice) -> None:
        out[part] = min_hamming(queries, codes[rows[part], :width])

    list(scan_pool().map(run, parts))
    return out
