"""The large-gallery index: exact Hamming pass over a compact code, then the full comparison of the best few.

Layout (one row per enrolled palm, rows ``0..n-1`` are live, no holes):

- ``head``: the first ``head_bytes`` of the coarse code, scanned exhaustively (faiss popcount kernel for the
  distances, split over ``scan_threads`` threads, then counting selection of the ``prefilter_k`` smallest: exact,
  no approximation);
- ``aligned`` (when the matcher has an aligned code, ``aligned_bytes > 0``): its distance to the probe is the
  smallest Hamming distance over the probe's shifted codes (``aligned_probe_codes``). The ``prefilter_k`` rows are
  ranked by that shift-tolerant distance alone (measured on Tongji: adding the coarse distance to it ranks mates
  worse, not better) and the ``rerank_k`` best go on. Where the matcher's ``aligned_head_bytes`` is smaller than
  ``aligned_bytes``, the distance over only those leading aligned bytes first keeps the ``aligned_prefilter_k``
  best rows (half the cost per row), which are then ranked over the whole aligned code;
- ``tail`` (only without an aligned code): the rest of the coarse code, added to the head distance of the
  ``prefilter_k`` best rows to rank them;
- the full templates of those ``rerank_k`` candidates come from a :class:`~palmid.index.base.TemplateSource`
  (in memory for small galleries, the encrypted store for large ones) and are compared with the probe in full.

With ``head_bytes == code_bytes`` the first pass is the exact Hamming search over the whole code.
Removal swaps the last row into the removed one and wipes the old last row: it is immediate and O(1), so a removed
palm is never returned by a search that starts after :meth:`FastIndex.remove` returned. All methods are thread-safe
(readers-writer lock); faiss releases the GIL so concurrent searches (and the parts of one scan) run in parallel.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ValidationFailed
from palmid.index.base import (
    Matcher,
    MemoryTemplates,
    ReadWriteLock,
    SearchHit,
    TemplateSource,
    already_indexed,
    check_k,
    check_subject_id,
    top_hits,
)
from palmid.index.hamming import MAX_SCAN_THREADS, hamming_scan, min_hamming, min_hamming_of_rows, scan_rows, smallest
from palmid.index.profiles import (
    DEFAULT_ALIGNED_PREFILTER_K,
    DEFAULT_PREFILTER_K,
    DEFAULT_RERANK_K,
    SearchProfile,
)

T = TypeVar("T")

_GROWTH = 1.5
_MIN_CAPACITY = 1024
_ADD_CHUNK = 4096


class FastIndex(Generic[T]):
    """Exact Hamming candidate search (faiss) + full comparison of the top ``rerank_k`` candidates."""

    def __init__(
        self,
        *,
        matcher: Matcher[T],
        templates: TemplateSource[T] | None = None,
        rerank_k: int = DEFAULT_RERANK_K,
        head_bytes: int | None = None,
        prefilter_k: int = DEFAULT_PREFILTER_K,
        aligned_prefilter_k: int = DEFAULT_ALIGNED_PREFILTER_K,
        scan_threads: int | None = None,
    ) -> None:
        code_bytes = matcher.code_bytes
        aligned = matcher.aligned_bytes
        aligned_head = matcher.aligned_head_bytes
        head = matcher.head_bytes if head_bytes is None else head_bytes
        if (
            not 0 < head <= code_bytes - aligned
            or not 0 <= aligned_head <= aligned
            or rerank_k < 1
            or prefilter_k < rerank_k
            or aligned_prefilter_k < rerank_k
            or (scan_threads is not None and scan_threads < 1)
        ):
            raise ValidationFailed(
                "index options need 0 < head_bytes <= code_bytes - aligned_bytes, 0 <= aligned_head_bytes <= "
                "aligned_bytes, prefilter_k, aligned_prefilter_k >= rerank_k >= 1 and scan_threads >= 1",
                code="invalid_index_options",
            )
        self._matcher = matcher
        self._rerank_k = rerank_k
        self._prefilter_k = prefilter_k
        self._head_bytes = head
        self._aligned_bytes = aligned
        self._aligned_head_bytes = aligned_head
        self._aligned_prefilter_k = aligned_prefilter_k
        self._code_bytes = code_bytes
        # with an aligned code the rest of the coarse code is not used (nor kept): see the module docstring
        self._tail_bytes = 0 if aligned else code_bytes - head
        self._scan_threads = scan_threads if scan_threads is not None else min(MAX_SCAN_THREADS, os.cpu_count() or 1)
        self._templates: TemplateSource[T] = (
            templates if templates is not None else MemoryTemplates(size_of=matcher.template_nbytes)
        )
        self._lock = ReadWriteLock()
        self._n = 0
        self._head = np.zeros((0, self._head_bytes), dtype=np.uint8)
        self._tail = np.zeros((0, self._tail_bytes), dtype=np.uint8)
        self._aligned = np.zeros((0, self._aligned_bytes), dtype=np.uint8)
        self._ids: list[str] = []
        self._row_of: dict[str, int] = {}

    @classmethod
    def with_profile(
        cls, profile: SearchProfile, *, matcher: Matcher[T], templates: TemplateSource[T] | None = None
    ) -> FastIndex[T]:
        """An index running ``profile``'s stages (one of :data:`SEARCH_PROFILES` or a custom one)."""
        return cls(
            matcher=matcher,
            templates=templates,
            head_bytes=profile.head_bytes,
            prefilter_k=profile.prefilter_k,
            aligned_prefilter_k=profile.aligned_prefilter_k,
            rerank_k=profile.rerank_k,
        )

    @property
    def profile(self) -> SearchProfile:
        """The stages this index runs."""
        return SearchProfile(
            head_bytes=self._head_bytes,
            prefilter_k=self._prefilter_k,
            aligned_prefilter_k=self._aligned_prefilter_k,
            rerank_k=self._rerank_k,
        )

    # ----------------------------------------------------------------------------------------------- writing
    def add(self, subject_id: str, template: T) -> None:
        self._append([(subject_id, template)])

    def add_many(
        self,
        items: Iterable[tuple[str, T]],
        *,
        progress: Callable[[int], None] | None = None,
        expected: int | None = None,
    ) -> int:
        """Bulk add (start-up rebuild); searches may run between chunks of 4096. Returns how many were added.

        A chunk is added whole or not at all; a duplicate id raises and leaves earlier chunks added.
        """
        if expected is not None:
            with self._lock.write():
                self._reserve(self._n + expected)
        iterator: Iterator[tuple[str, T]] = iter(items)
        count = 0
        while chunk := list(islice(iterator, _ADD_CHUNK)):
            self._append(chunk)
            count += len(chunk)
            if progress is not None:
                progress(count)
        return count

    def remove(self, subject_id: str) -> bool:
        with self._lock.write():
            row = self._row_of.pop(subject_id, None)
            if row is None:
                return False
            last = self._n - 1
            if row != last:
                moved = self._ids[last]
                self._head[row] = self._head[last]
                self._tail[row] = self._tail[last]
                self._aligned[row] = self._aligned[last]
                self._ids[row] = moved
                self._row_of[moved] = row
            self._head[last] = 0
            self._tail[last] = 0
            self._aligned[last] = 0
            self._ids.pop()
            self._n = last
            self._templates.discard(subject_id)
            return True

    @property
    def code_bytes(self) -> int:
        """Width of one palm's index code (:meth:`code_of`)."""
        return self._code_bytes

    @property
    def templates(self) -> TemplateSource[T]:
        """Where the full templates of the candidates come from (:meth:`add_codes` needs one that already has them)."""
        return self._templates

    def code_of(self, template: T) -> NDArray[np.uint8]:
        """The index code of ``template`` (what :meth:`add_codes` takes; stored next to the template)."""
        code: NDArray[np.uint8] = self._codes([template])[0]
        return code

    def add_codes(self, subject_ids: Sequence[str], codes: NDArray[np.uint8]) -> None:
        """Add palms by their precomputed codes (``(len(subject_ids), code_bytes)`` uint8, from :meth:`code_of`),
        all or none. The template source is not touched: their templates must already be in it (store-backed)."""
        for subject_id in subject_ids:
            check_subject_id(subject_id)
        if codes.dtype != np.uint8 or codes.shape != (len(subject_ids), self._code_bytes):
            raise ValidationFailed("index codes have the wrong size or type for this index", code="invalid_template")
        with self._lock.write():
            self._check_new(subject_ids)
            start = self._n
            self._store_codes(start, codes)
            for offset, subject_id in enumerate(subject_ids):
                self._ids.append(subject_id)
                self._row_of[subject_id] = start + offset
            self._n = start + len(subject_ids)

    def _check_new(self, subject_ids: Iterable[str]) -> None:
        seen: set[str] = set()
        for subject_id in subject_ids:
            if subject_id in self._row_of or subject_id in seen:
                raise already_indexed(subject_id)
            seen.add(subject_id)

    def _store_codes(self, start: int, codes: NDArray[np.uint8]) -> None:
        stop = start + codes.shape[0]
        self._reserve(stop)
        self._head[start:stop] = codes[:, : self._head_bytes]
        self._tail[start:stop] = codes[:, self._head_bytes : self._head_bytes + self._tail_bytes]
        self._aligned[start:stop] = codes[:, self._code_bytes - self._aligned_bytes :]

    def _append(self, items: Sequence[tuple[str, T]]) -> None:
        for subject_id, _ in items:
            check_subject_id(subject_id)
        codes = self._codes([template for _, template in items])
        with self._lock.write():
            self._check_new(subject_id for subject_id, _ in items)
            start = self._n
            stop = start + len(items)
            self._store_codes(start, codes)
            for offset, (subject_id, template) in enumerate(items):
                self._ids.append(subject_id)
                self._row_of[subject_id] = start + offset
                self._templates.put(subject_id, template)
            self._n = stop

    def _reserve(self, rows: int) -> None:
        capacity = self._head.shape[0]
        if rows <= capacity:
            return
        new_capacity = max(rows, _MIN_CAPACITY, int(capacity * _GROWTH))
        self._head = _grown(self._head, new_capacity, self._n)
        self._tail = _grown(self._tail, new_capacity, self._n)
        self._aligned = _grown(self._aligned, new_capacity, self._n)

    # ----------------------------------------------------------------------------------------------- reading
    def search(self, template: T, *, k: int = 1) -> list[SearchHit]:
        return self.search_many([template], k=k)[0]

    def search_many(self, templates: Sequence[T], *, k: int = 1) -> list[list[SearchHit]]:
        """Search several probes at once (the Hamming pass is batched over probes)."""
        check_k(k)
        if not templates:
            return []
        codes = self._codes(templates)
        shifted = self._probe_codes(templates)
        with self._lock.read():
            if self._n == 0:
                return [[] for _ in templates]
            rows = self._candidate_rows(codes, shifted)
            results = []
            for template, candidate_rows in zip(templates, rows, strict=True):
                ids = [self._ids[row] for row in candidate_rows]
                fetched = self._templates.get_many(ids)
                found = [(i, t) for i, t in zip(ids, fetched, strict=True) if t is not None]
                similarities = self._matcher.compare_many(template, [t for _, t in found])
                results.append(top_hits([i for i, _ in found], similarities, k=k))
            return results

    def candidates(self, template: T) -> list[str]:
        """The subject ids the Hamming pass hands to the full comparison (for recall measurements)."""
        codes = self._codes([template])
        shifted = self._probe_codes([template])
        with self._lock.read():
            if self._n == 0:
                return []
            return [self._ids[row] for row in self._candidate_rows(codes, shifted)[0]]

    def coarse_neighbours(self, template: T, *, k: int) -> list[str]:
        """The ``k`` nearest subject ids by the ranking distance of the later stages over the WHOLE gallery (the
        shift-searched aligned distance when the matcher has an aligned code, else the whole coarse code), by
        exhaustive scan.

        A reference for measuring the head-only first pass; linear in the gallery (and 25 times dearer per row with
        an aligned code), not for serving.
        """
        check_k(k)
        code = self._codes([template])[0]
        shifted = self._probe_codes([template])[0]
        with self._lock.read():
            n = self._n
            if n == 0:
                return []
            distances: NDArray[np.int64]
            if self._aligned_bytes:
                distances = min_hamming(shifted, self._aligned[:n]).astype(np.int64)
            else:
                head = np.empty(n, dtype=np.int32)
                hamming_scan(np.ascontiguousarray(code[: self._head_bytes]), self._head, n, head)
                distances = head.astype(np.int64)
                if self._tail_bytes:
                    tail = np.empty(n, dtype=np.int32)
                    tail_q = np.ascontiguousarray(code[self._head_bytes : self._head_bytes + self._tail_bytes])
                    hamming_scan(tail_q, self._tail, n, tail)
                    distances += tail
            keep = min(k, n)
            best = np.argpartition(distances, keep - 1)[:keep]
            return [self._ids[row] for row in best[np.argsort(distances[best], kind="stable")]]

    def _aligned_rank(self, rows: NDArray[np.int64], shifted: NDArray[np.uint8], keep: int) -> NDArray[np.int64]:
        """The ``keep`` rows nearest by aligned distance (best first): over the leading ``aligned_head_bytes`` first
        when that leaves more than ``aligned_prefilter_k`` rows to rank over the whole aligned code."""
        head = self._aligned_head_bytes
        if 0 < head < self._aligned_bytes and rows.shape[0] > self._aligned_prefilter_k:
            part = min_hamming_of_rows(
                np.ascontiguousarray(shifted[:, :head]), self._aligned, rows, head, self._scan_threads
            )
            rows = rows[np.sort(np.argpartition(part, self._aligned_prefilter_k - 1)[: self._aligned_prefilter_k])]
        distances = min_hamming_of_rows(shifted, self._aligned, rows, self._aligned_bytes, self._scan_threads)
        best = np.argpartition(distances, keep - 1)[:keep] if keep < distances.shape[0] else np.arange(rows.shape[0])
        return rows[best[np.argsort(distances[best], kind="stable")]]

    def _candidate_rows(
        self, codes: NDArray[np.uint8], shifted: Sequence[NDArray[np.uint8]]
    ) -> list[NDArray[np.int64]]:
        n = self._n
        keep = min(n, self._rerank_k)
        first_k = keep if self._tail_bytes == 0 and self._aligned_bytes == 0 else min(n, self._prefilter_k)
        out: list[NDArray[np.int64]] = []
        head_q = np.ascontiguousarray(codes[:, : self._head_bytes])
        distances = np.empty(n, dtype=np.int32)
        for q in range(codes.shape[0]):
            scan_rows(head_q[q], self._head, n, distances, self._scan_threads)
            rows_q = smallest(distances, first_k)
            if self._aligned_bytes:
                out.append(self._aligned_rank(rows_q, shifted[q], keep))
                continue
            total = distances[rows_q].astype(np.int64)
            if self._tail_bytes:
                tail_q = codes[q, self._head_bytes : self._head_bytes + self._tail_bytes]
                total += np.bitwise_count(self._tail[rows_q] ^ tail_q).sum(axis=1, dtype=np.int64)
            best = np.argpartition(total, keep - 1)[:keep] if keep < total.shape[0] else np.arange(total.shape[0])
            out.append(rows_q[best[np.argsort(total[best], kind="stable")]])
        return out

    def _probe_codes(self, templates: Sequence[T]) -> list[NDArray[np.uint8]]:
        """Each probe's shifted aligned codes (empty without an aligned code)."""
        if not self._aligned_bytes:
            return [np.zeros((0, 0), dtype=np.uint8) for _ in templates]
        out = []
        for template in templates:
            shifted = self._matcher.aligned_probe_codes(template)
            if shifted.dtype != np.uint8 or shifted.ndim != 2 or shifted.shape[1] != self._aligned_bytes:
                raise ValidationFailed("aligned probe code has the wrong size for this index", code="invalid_template")
            if not len(shifted):
                raise ValidationFailed("a probe needs at least one aligned code", code="invalid_template")
            out.append(np.ascontiguousarray(shifted))
        return out

    def _codes(self, templates: Sequence[T]) -> NDArray[np.uint8]:
        codes = self._matcher.coarse_codes(templates)
        if codes.dtype != np.uint8 or codes.shape != (len(templates), self._code_bytes):
            raise ValidationFailed("coarse code has the wrong size for this index", code="invalid_template")
        return codes

    # ----------------------------------------------------------------------------------------------- sizes
    def nbytes(self, *, include_templates: bool = True) -> int:
        """Bytes held in memory: code arrays (allocated capacity), the id map and (optionally) the template source."""
        with self._lock.read():
            arrays = self._head.nbytes + self._tail.nbytes + self._aligned.nbytes
            if include_templates:
                arrays += self._templates.nbytes()
            id_strings = sum(sys.getsizeof(subject_id) for subject_id in self._ids)
            return arrays + sys.getsizeof(self._ids) + sys.getsizeof(self._row_of) + id_strings

    def __len__(self) -> int:
        return self._n

    def __contains__(self, subject_id: object) -> bool:
        return subject_id in self._row_of


def _grown(array: NDArray[np.uint8], capacity: int, used: int) -> NDArray[np.uint8]:
    grown = np.zeros((capacity, array.shape[1]), dtype=np.uint8)
    grown[:used] = array[:used]
    return grown
