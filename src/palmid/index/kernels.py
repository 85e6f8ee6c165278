"""Native Hamming kernels of the fast index (``_kernels.c``), with the checks and the thread split around them.

Two operations, both "smallest Hamming distance to any of the probe's codes" (a probe brings one code per alignment
searched, e.g. 25 shifts):

- :func:`scan_min` over **every** row of a :class:`LaneCodes` array (the exhaustive first pass). Rows are kept in
  groups of 8, word-major inside a group, so one 512-bit register holds the same word of 8 rows and each probe word
  is broadcast against it: memory is read once however many codes the probe has.
- :func:`min_rows` over a shortlist of rows of an ordinary row-major ``(rows, bytes)`` code array.

Each has three implementations with identical results: AVX-512 (VPOPCNTDQ), scalar with the POPCNT instruction,
and portable C; ``kernel="best"`` runs the fastest this CPU has (:func:`best_kernel` names it,
:func:`available_kernels` lists them), and naming one the CPU lacks raises ``ValueError``. The GIL is released
inside, so a scan is split over :func:`~palmid.index.hamming.scan_pool` threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

import palmid.index._kernels as _kernels
from palmid.index.hamming import scan_pool, split_rows

__all__ = [
    "LANES",
    "Kernel",
    "LaneCodes",
    "ScanDistances",
    "available_kernels",
    "best_kernel",
    "min_rows",
    "scan_min",
]

LANES = 8
"""Rows per group of the lane-major layout (one 512-bit register holds one word of each)."""
MAX_SCAN_WORDS = 64
MAX_PROBE_CODES = 4096
MAX_ROW_BYTES = 1024
_MIN_PARALLEL_GROUPS = 4096
"""Groups (of 8 rows) below which a scan stays on one thread."""
_MIN_PARALLEL_ROWS = 2048
"""Shortlist rows below which :func:`min_rows` stays on one thread."""

Kernel = Literal["best", "portable", "popcnt", "avx512"]
_KERNEL_CODES: dict[str, int] = {"best": 0, "portable": 1, "popcnt": 2, "avx512": 3}


def best_kernel() -> str:
    """``"avx512"``, ``"popcnt"`` or ``"portable"``: the implementation ``kernel="best"`` runs on this CPU."""
    name: str = _kernels.best_kernel()
    return name


def available_kernels() -> tuple[str, ...]:
    """The implementations this CPU can run (``"portable"`` always), slowest first."""
    order = ("portable", "popcnt", "avx512")
    return order[: order.index(best_kernel()) + 1]


def _kernel_code(kernel: Kernel) -> int:
    code = _KERNEL_CODES.get(kernel)
    if code is None:
        raise ValueError(f"unknown kernel {kernel!r}")
    return code


class LaneCodes:
    """Fixed-width codes (``words`` uint64 per row) of a growing set of rows, in the lane-major layout.

    Not thread-safe on its own: the index serialises writers and readers with its readers-writer lock.
    """

    def __init__(self, *, words: int) -> None:
        if not 1 <= words <= MAX_SCAN_WORDS:
            raise ValueError(f"scan codes need 1 to {MAX_SCAN_WORDS} words")
        self._words = words
        self._data = np.zeros((0, words, LANES), dtype=np.uint64)

    @property
    def words(self) -> int:
        return self._words

    @property
    def capacity(self) -> int:
        """Rows the allocated groups can hold."""
        return self._data.shape[0] * LANES

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)

    @property
    def data(self) -> NDArray[np.uint64]:
        """The ``(groups, words, LANES)`` array the kernel reads."""
        return self._data

    def reserve(self, rows: int, *, used: int) -> None:
        """Room for ``rows`` rows (the first ``used`` are kept; new rows are zero)."""
        groups = -(-rows // LANES)
        if groups <= self._data.shape[0]:
            return
        grown = np.zeros((groups, self._words, LANES), dtype=np.uint64)
        used_groups = -(-used // LANES)
        grown[:used_groups] = self._data[:used_groups]
        self._data = grown

    def set_rows(self, start: int, codes: NDArray[np.uint8]) -> None:
        """Write ``codes`` (``(n, 8 * words)`` uint8) into rows ``start .. start + n - 1`` (already reserved)."""
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != 8 * self._words:
            raise ValueError("scan codes have the wrong width")
        n = codes.shape[0]
        if start < 0 or start + n > self.capacity:
            raise ValueError("rows out of range")
        words = np.ascontiguousarray(codes).view(np.uint64)  # (n, words), native byte order like the probes
        rows = np.arange(start, start + n)
        self._data[rows // LANES, :, rows % LANES] = words

    def row(self, row: int) -> NDArray[np.uint8]:
        """The ``8 * words`` bytes of one row."""
        words = np.ascontiguousarray(self._data[row // LANES, :, row % LANES])
        return words.view(np.uint8)

    def move_row(self, source: int, target: int) -> None:
        self._data[target // LANES, :, target % LANES] = self._data[source // LANES, :, source % LANES]

    def clear_row(self, row: int) -> None:
        self._data[row // LANES, :, row % LANES] = 0


@dataclass(frozen=True, eq=False)
class ScanDistances:
    """What :func:`scan_min` found: each row's distance, and their histogram (kept while scanning)."""

    distances: NDArray[np.uint16]
    histogram: NDArray[np.int64]

    def smallest(self, k: int, *, kernel: Kernel = "best") -> NDArray[np.int64]:
        """Rows of the ``k`` smallest distances, in ascending row order (ties at the boundary go to the lower rows):
        exact, from the histogram and one pass over the distances."""
        n = self.distances.shape[0]
        if k >= n:
            return np.arange(n, dtype=np.int64)
        if k < 1:
            return np.zeros(0, dtype=np.int64)
        cumulative = np.cumsum(self.histogram)
        radius = int(np.searchsorted(cumulative, k))  # first distance whose count reaches k
        below = int(cumulative[radius - 1]) if radius else 0
        out = np.empty(k, dtype=np.int64)
        written = _kernels.select_rows(self.distances, n, radius, k - below, out, _kernel_code(kernel))
        if written != k:
            raise RuntimeError("scan histogram and distances disagree")
        return out


def scan_min(
    codes: LaneCodes,
    n: int,
    probes: NDArray[np.uint8],
    *,
    words: int | None = None,
    threads: int = 1,
    kernel: Kernel = "best",
) -> ScanDistances:
    """Smallest Hamming distance of each of the first ``n`` rows over the probe codes, counted on their first
    ``words`` words (default: all). ``probes`` is ``(codes, 8 * codes.words)`` uint8."""
    used = codes.words if words is None else words
    if not 1 <= used <= codes.words:
        raise ValueError("words must be between 1 and the code width")
    if probes.dtype != np.uint8 or probes.ndim != 2 or probes.shape[1] != 8 * codes.words:
        raise ValueError("probe scan codes have the wrong width")
    if not 1 <= probes.shape[0] <= MAX_PROBE_CODES:
        raise ValueError(f"a probe brings 1 to {MAX_PROBE_CODES} scan codes")
    if not 0 <= n <= codes.capacity:
        raise ValueError("more rows than the codes hold")
    groups = -(-n // LANES)
    out = np.empty(groups * LANES, dtype=np.uint16)
    bins = 64 * used + 1
    parts = split_rows(groups, max(1, threads), minimum=_MIN_PARALLEL_GROUPS) if groups else []
    histograms = np.zeros((max(1, len(parts)), bins), dtype=np.uint32)
    probe_words = np.ascontiguousarray(probes)
    data = codes.data
    code = _kernel_code(kernel)

    def run(index: int, part: slice) -> None:
        _kernels.scan_min(
            data, codes.words, part.start, part.stop, used, probe_words, probe_words.shape[0],
            out[part.start * LANES : part.stop * LANES], n, histograms[index], code,
        )  # fmt: skip

    _run_parts(parts, run)
    return ScanDistances(distances=out[:n], histogram=histograms.sum(axis=0, dtype=np.int64))


def min_rows(
    codes: NDArray[np.uint8],
    rows: NDArray[np.int64],
    probes: NDArray[np.uint8],
    *,
    width: int | None = None,
    threads: int = 1,
    kernel: Kernel = "best",
) -> NDArray[np.int32]:
    """``(len(rows),)`` smallest Hamming distance of the first ``width`` bytes (default: all) of each
    ``codes[row]`` over the ``probes`` (``(codes, width)`` uint8)."""
    if codes.dtype != np.uint8 or codes.ndim != 2 or not codes.flags.c_contiguous:
        raise ValueError("codes must be a C-contiguous (rows, bytes) uint8 array")
    used = codes.shape[1] if width is None else width
    if not 1 <= used <= min(codes.shape[1], MAX_ROW_BYTES):
        raise ValueError("width must be between 1 and the code width")
    if probes.dtype != np.uint8 or probes.ndim != 2 or probes.shape[1] != used:
        raise ValueError("probe codes have the wrong width")
    if not 1 <= probes.shape[0] <= MAX_PROBE_CODES:
        raise ValueError(f"a probe brings 1 to {MAX_PROBE_CODES} codes")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty(rows.shape[0], dtype=np.int32)
    if rows.shape[0] == 0:
        return out
    probe_bytes = np.ascontiguousarray(probes)
    code = _kernel_code(kernel)

    def run(_: int, part: slice) -> None:
        _kernels.min_rows(
            codes, codes.shape[0], codes.shape[1], used, rows[part], part.stop - part.start, probe_bytes,
            probe_bytes.shape[0], out[part], code,
        )  # fmt: skip

    _run_parts(split_rows(rows.shape[0], max(1, threads), minimum=_MIN_PARALLEL_ROWS), run)
    return out


def _run_parts(parts: list[slice], run: Callable[[int, slice], None]) -> None:
    """``run(i, part)`` for each part: in this thread when there is one, else on the scan pool's threads."""
    if len(parts) == 1:
        run(0, parts[0])
    elif parts:
        list(scan_pool().map(run, range(len(parts)), parts))
