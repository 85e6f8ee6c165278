"""The large-gallery index: an exhaustive shift-searched Hamming scan, a re-ranking, the full comparison of a few.

Layout (one row per enrolled palm, rows ``0..n-1`` are live, no holes):

- ``scan``: the matcher's scan code of every palm in the lane-major layout of :class:`~palmid.index.kernels.
  LaneCodes`. Every search compares ALL of them with each of the probe's shifted scan codes (native AVX-512 kernel,
  split over ``scan_threads`` threads) and keeps the ``prefilter_k`` rows of smallest distance (exact counting
  selection);
- ``aligned`` (when the matcher has an aligned code): row-major. Its first ``aligned_head_bytes`` against the
  probe's unrotated shifted codes keep the ``aligned_prefilter_k`` best of those rows; the whole aligned code against
  the probe's shifted AND rotated codes keeps the ``rerank_k`` best. Without an aligned code the scan distance picks
  the ``rerank_k`` directly;
- the full templates of those ``rerank_k`` candidates come from a :class:`~palmid.index.base.TemplateSource`
  (in memory for small galleries, the encrypted store for large ones) and are compared with the probe in full.

How much each stage does is a :class:`~palmid.index.profiles.SearchProfile`. Removal moves the last row into the
removed one and wipes the old last row: it is immediate and O(1), so a removed palm is never returned by a search
that starts after :meth:`FastIndex.remove` returned. All methods are thread-safe (readers-writer lock); the kernels
release the GIL, so concurrent searches (and the parts of one scan) run in parallel.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
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
from palmid.index.hamming import MAX_SCAN_THREADS
from palmid.index.kernels import MAX_SCAN_WORDS, LaneCodes, min_rows, scan_min
from palmid.index.profiles import SearchProfile

T = TypeVar("T")

_GROWTH = 1.5
_MIN_CAPACITY = 1024
_ADD_CHUNK = 4096


class FastIndex(Generic[T]):
    """Shift-searched Hamming scan of every palm + aligned-code re-ranking + full comparison of ``rerank_k``."""

    def __init__(
        self,
        *,
        matcher: Matcher[T],
        templates: TemplateSource[T] | None = None,
        profile: SearchProfile | None = None,
        scan_threads: int | None = None,
    ) -> None:
        chosen = profile if profile is not None else SearchProfile()
        scan_bytes, aligned, aligned_head = matcher.scan_bytes, matcher.aligned_bytes, matcher.aligned_head_bytes
        scan_words = scan_bytes // 8
        if (
            scan_bytes % 8
            or not 1 <= scan_words <= MAX_SCAN_WORDS
            or scan_bytes + aligned != matcher.code_bytes
            or not 0 <= aligned_head <= aligned
        ):
            raise ValidationFailed(
                "the matcher's code needs a scan code of 8 to 512 bytes (whole 64-bit words) followed by the "
                "aligned code, and an aligned head no longer than the aligned code",
                code="invalid_index_options",
            )
        words = chosen.scan_words if chosen.scan_words is not None else scan_words
        if (
            not 1 <= words <= scan_words
            or chosen.rerank_k < 1
            or chosen.prefilter_k < chosen.rerank_k
            or chosen.aligned_prefilter_k < chosen.rerank_k
            or (scan_threads is not None and scan_threads < 1)
        ):
            raise ValidationFailed(
                "index options need 1 <= scan_words <= the scan code's words, prefilter_k, aligned_prefilter_k >= "
                "rerank_k >= 1 and scan_threads >= 1",
                code="invalid_index_options",
            )
        self._matcher = matcher
        self._profile = SearchProfile(
            scan_words=words,
            dense_scan=chosen.dense_scan,
            prefilter_k=chosen.prefilter_k,
            aligned_prefilter_k=chosen.aligned_prefilter_k,
            rerank_k=chosen.rerank_k,
        )
        self._scan_bytes = scan_bytes
        self._aligned_bytes = aligned
        self._aligned_head_bytes = aligned_head
        self._code_bytes = matcher.code_bytes
        self._scan_threads = scan_threads if scan_threads is not None else min(MAX_SCAN_THREADS, os.cpu_count() or 1)
        self._templates: TemplateSource[T] = (
            templates if templates is not None else MemoryTemplates(size_of=matcher.template_nbytes)
        )
        self._lock = ReadWriteLock()
        self._n = 0
        self._scan = LaneCodes(words=scan_words)
        self._aligned = np.zeros((0, aligned), dtype=np.uint8)
        self._ids: list[str] = []
        self._row_of: dict[str, int] = {}

    @property
    def profile(self) -> SearchProfile:
        """The stages this index runs (``scan_words`` resolved to a number)."""
        return self._profile

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
                self._scan.move_row(last, row)
                self._aligned[row] = self._aligned[last]
                self._ids[row] = moved
                self._row_of[moved] = row
            self._scan.clear_row(last)
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
        self._scan.set_rows(start, np.ascontiguousarray(codes[:, : self._scan_bytes]))
        self._aligned[start:stop] = codes[:, self._scan_bytes :]

    def _append(self, items: Sequence[tuple[str, T]]) -> None:
        for subject_id, _ in items:
            check_subject_id(subject_id)
        codes = self._codes([template for _, template in items])
        with self._lock.write():
            self._check_new(subject_id for subject_id, _ in items)
            start = self._n
            self._store_codes(start, codes)
            for offset, (subject_id, template) in enumerate(items):
                self._ids.append(subject_id)
                self._row_of[subject_id] = start + offset
                self._templates.put(subject_id, template)
            self._n = start + len(items)

    def _reserve(self, rows: int) -> None:
        capacity = self._aligned.shape[0]
        if rows <= capacity:
            return
        new_capacity = max(rows, _MIN_CAPACITY, int(capacity * _GROWTH))
        self._scan.reserve(new_capacity, used=self._n)
        grown = np.zeros((new_capacity, self._aligned_bytes), dtype=np.uint8)
        grown[: self._n] = self._aligned[: self._n]
        self._aligned = grown

    # ----------------------------------------------------------------------------------------------- reading
    def search(self, template: T, *, k: int = 1) -> list[SearchHit]:
        return self.search_many([template], k=k)[0]

    def search_many(self, templates: Sequence[T], *, k: int = 1) -> list[list[SearchHit]]:
        """Search several probes (one after the other, under one read lock)."""
        check_k(k)
        if not templates:
            return []
        probes = [self._probe(template) for template in templates]
        with self._lock.read():
            if self._n == 0:
                return [[] for _ in templates]
            results = []
            for template, probe in zip(templates, probes, strict=True):
                ids = [self._ids[row] for row in self._candidate_rows(probe)]
                fetched = self._templates.get_many(ids)
                found = [(i, t) for i, t in zip(ids, fetched, strict=True) if t is not None]
                similarities = self._matcher.compare_many(template, [t for _, t in found])
                results.append(top_hits([i for i, _ in found], similarities, k=k))
            return results

    def candidates(self, template: T) -> list[str]:
        """The subject ids the code stages hand to the full comparison, best first (for recall measurements)."""
        probe = self._probe(template)
        with self._lock.read():
            if self._n == 0:
                return []
            return [self._ids[row] for row in self._candidate_rows(probe)]

    def scan_rank(self, template: T, subject_id: str) -> int:
        """How many palms the scan ranks strictly before ``subject_id`` for this probe (0: first); the profile's
        ``prefilter_k`` must exceed it for the later stages to see the palm. For recall measurements."""
        probe = self._probe(template)
        with self._lock.read():
            row = self._row_of.get(subject_id)
            if row is None:
                raise ValidationFailed("this subject is not in the index", code="invalid_subject_id")
            scanned = scan_min(
                self._scan, self._n, probe.scan, words=self._profile.scan_words, threads=self._scan_threads
            )
            return int(np.count_nonzero(scanned.distances < scanned.distances[row]))

    def reference_neighbours(self, template: T, *, k: int) -> list[str]:
        """The ``k`` nearest subject ids over the WHOLE gallery by the last code stage's distance (the rotation- and
        shift-searched aligned code; without one, the scan code over all its words and every alignment), by
        exhaustive comparison.

        A reference for measuring what the scan may miss; linear in the gallery and dearer per row than a search,
        not for serving.
        """
        check_k(k)
        probe = self._probe(template, reference=True)
        with self._lock.read():
            n = self._n
            if n == 0:
                return []
            rows = np.arange(n, dtype=np.int64)
            distances: NDArray[np.integer]
            if self._aligned_bytes:
                distances = min_rows(self._aligned, rows, probe.rotated, threads=self._scan_threads)
            else:
                distances = scan_min(self._scan, n, probe.scan, threads=self._scan_threads).distances
            return [self._ids[row] for row in _best(rows, distances, k)]

    def _candidate_rows(self, probe: _Probe) -> NDArray[np.int64]:
        """Rows for the full comparison, best first. Called under the read lock."""
        n = self._n
        profile = self._profile
        scanned = scan_min(self._scan, n, probe.scan, words=profile.scan_words, threads=self._scan_threads)
        if not self._aligned_bytes:
            rows = scanned.smallest(profile.rerank_k)
            return _best(rows, scanned.distances[rows], profile.rerank_k)
        rows = scanned.smallest(profile.prefilter_k)
        head = self._aligned_head_bytes
        if 0 < head < self._aligned_bytes and rows.shape[0] > profile.aligned_prefilter_k:
            part = min_rows(self._aligned, rows, probe.aligned_head, width=head, threads=self._scan_threads)
            rows = np.sort(rows[np.argpartition(part, profile.aligned_prefilter_k - 1)[: profile.aligned_prefilter_k]])
        whole = min_rows(self._aligned, rows, probe.rotated, threads=self._scan_threads)
        return _best(rows, whole, profile.rerank_k)

    def _probe(self, template: T, *, reference: bool = False) -> _Probe:
        """The probe's codes for the stages (checked against this index's widths)."""
        scan = self._matcher.scan_probe_codes(template, dense=reference or self._profile.dense_scan)
        _check_probe_codes(scan, self._scan_bytes, "scan")
        if not self._aligned_bytes:
            return _Probe(scan=scan, aligned_head=scan, rotated=scan)
        aligned = self._matcher.aligned_probe_codes(template)
        _check_probe_codes(aligned.unrotated, self._aligned_bytes, "aligned")
        _check_probe_codes(aligned.rotated, self._aligned_bytes, "aligned")
        head = np.ascontiguousarray(aligned.unrotated[:, : self._aligned_head_bytes])
        return _Probe(scan=scan, aligned_head=head, rotated=np.ascontiguousarray(aligned.rotated))

    def _codes(self, templates: Sequence[T]) -> NDArray[np.uint8]:
        codes = self._matcher.index_codes(templates)
        if codes.dtype != np.uint8 or codes.shape != (len(templates), self._code_bytes):
            raise ValidationFailed("index code has the wrong size for this index", code="invalid_template")
        return codes

    # ----------------------------------------------------------------------------------------------- sizes
    def nbytes(self, *, include_templates: bool = True) -> int:
        """Bytes held in memory: code arrays (allocated capacity), the id map and (optionally) the template source."""
        with self._lock.read():
            arrays = self._scan.nbytes + self._aligned.nbytes
            if include_templates:
                arrays += self._templates.nbytes()
            id_strings = sum(sys.getsizeof(subject_id) for subject_id in self._ids)
            return arrays + sys.getsizeof(self._ids) + sys.getsizeof(self._row_of) + id_strings

    def __len__(self) -> int:
        return self._n

    def __contains__(self, subject_id: object) -> bool:
        return subject_id in self._row_of


@dataclass(frozen=True, slots=True, kw_only=True)
class _Probe:
    """A probe's codes for the three code stages."""

    scan: NDArray[np.uint8]
    aligned_head: NDArray[np.uint8]
    rotated: NDArray[np.uint8]


def _check_probe_codes(codes: NDArray[np.uint8], width: int, what: str) -> None:
    if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != width or not len(codes):
        raise ValidationFailed(f"the probe's {what} codes have the wrong size for this index", code="invalid_template")


def _best(rows: NDArray[np.int64], distances: NDArray[np.integer], keep: int) -> NDArray[np.int64]:
    """The ``keep`` rows of smallest distance, best first (ties by position)."""
    if keep < distances.shape[0]:
        chosen = np.argpartition(distances, keep - 1)[:keep]
        chosen = chosen[np.lexsort((chosen, distances[chosen]))]
    else:
        chosen = np.argsort(distances, kind="stable")
    return rows[chosen]
