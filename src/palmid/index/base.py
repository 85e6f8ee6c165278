"""What an identification index is: enrolled subject ids -> templates, searchable by similarity.

Two implementations share the :class:`Index` protocol: :class:`~palmid.index.exact.ExactIndex` (full comparison
against every enrolled template, the reference) and :class:`~palmid.index.fast.FastIndex` (an exhaustive
shift-searched Hamming pass over a compact code, a re-ranking of its shortlist, then the full comparison of the
best candidates). The template format is not known here: a
:class:`Matcher` tells the index how to derive the compact codes and how to compare.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ConflictError, ValidationFailed

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlignedProbeCodes:
    """A probe's aligned codes, one row per alignment searched: ``unrotated`` (shifts only) and ``rotated`` (those
    same rows first, then the shifts at the other stored rotations)."""

    unrotated: NDArray[np.uint8]
    rotated: NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: an enrolled subject and its similarity to the probe (higher = same palm)."""

    subject_id: str
    similarity: float


class Index(Protocol[T_contra]):
    """An in-memory identification index. Every method is safe to call from several threads."""

    def add(self, subject_id: str, template: T_contra) -> None: ...

    def add_many(
        self, items: Iterable[tuple[str, T_contra]], *, progress: Callable[[int], None] | None = None
    ) -> int: ...

    def remove(self, subject_id: str) -> bool: ...

    def search(self, template: T_contra, *, k: int = 1) -> list[SearchHit]: ...

    def search_many(self, templates: Sequence[T_contra], *, k: int = 1) -> list[list[SearchHit]]: ...

    def nbytes(self) -> int: ...

    def __len__(self) -> int: ...

    def __contains__(self, subject_id: object) -> bool: ...


class Matcher(Protocol[T_contra]):
    """How an index handles one template format.

    ``index_codes`` gives one fixed-size code per template, as a ``(n, code_bytes)`` uint8 array, made of two parts
    (``code_bytes == scan_bytes + aligned_bytes``):

    - the first ``scan_bytes`` (a multiple of 8) are the *scan code*, compared with every enrolled palm: a palm's
      scan distance is the smallest Hamming distance between its scan code and any of the probe's
      ``scan_probe_codes`` (one per alignment searched; a single code is a plain Hamming search);
    - the last ``aligned_bytes`` (0: none) are the *aligned code*, which ranks the scan's shortlist: the smallest
      Hamming distance of its first ``aligned_head_bytes`` to the probe's unrotated aligned codes first, then of
      the whole code to the rotated set (:class:`AlignedProbeCodes`).

    ``compare_many`` is the full comparison of a probe with several references (== ``compare`` elementwise).
    """

    @property
    def code_bytes(self) -> int: ...

    @property
    def scan_bytes(self) -> int:
        """Leading code bytes compared with every palm (a multiple of 8)."""
        ...

    @property
    def aligned_bytes(self) -> int:
        """How many trailing code bytes are the aligned code (0: the code has none)."""
        ...

    @property
    def aligned_head_bytes(self) -> int:
        """Leading bytes of the aligned code that may rank a long shortlist first (``aligned_bytes``: no cascade)."""
        ...

    def index_codes(self, templates: Sequence[T_contra]) -> NDArray[np.uint8]: ...

    def scan_probe_codes(self, template: T_contra, *, dense: bool = False) -> NDArray[np.uint8]:
        """``(alignments, scan_bytes)`` scan codes of a probe; ``dense`` may search more alignments."""
        ...

    def aligned_probe_codes(self, template: T_contra) -> AlignedProbeCodes:
        """The probe's ``(alignments, aligned_bytes)`` codes, unrotated and rotated (both made in one go)."""
        ...

    def compare(self, probe: T_contra, reference: T_contra) -> float: ...

    def compare_many(self, probe: T_contra, references: Sequence[T_contra]) -> NDArray[np.float64]: ...

    def template_nbytes(self, template: T_contra) -> int: ...


class TemplateSource(Protocol[T]):
    """Where the fast index gets the full templates of its few best candidates.

    :class:`MemoryTemplates` keeps them in RAM (small galleries); a service with a million palms passes a source
    that reads them from its (encrypted) store, so that only the compact codes stay in memory. ``get_many``
    returns ``None`` for an id it no longer has (erased meanwhile): that candidate is dropped.
    """

    def put(self, subject_id: str, template: T) -> None: ...

    def discard(self, subject_id: str) -> None: ...

    def get_many(self, subject_ids: Sequence[str]) -> list[T | None]: ...

    def nbytes(self) -> int: ...


class MemoryTemplates(Generic[T]):
    """Full templates kept in a dict (thread-safe under the index lock that calls it)."""

    def __init__(self, *, size_of: Callable[[T], int]) -> None:
        self._templates: dict[str, T] = {}
        self._size_of = size_of

    def put(self, subject_id: str, template: T) -> None:
        self._templates[subject_id] = template

    def discard(self, subject_id: str) -> None:
        self._templates.pop(subject_id, None)

    def get_many(self, subject_ids: Sequence[str]) -> list[T | None]:
        return [self._templates.get(subject_id) for subject_id in subject_ids]

    def nbytes(self) -> int:
        return sum(self._size_of(t) for t in self._templates.values()) + sys.getsizeof(self._templates)


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def check_subject_id(subject_id: str) -> None:
    """Refuse ids that cannot be a subject id (empty or not a string)."""
    if not isinstance(subject_id, str) or not subject_id:
        raise ValidationFailed("subject id must be a non-empty string", code="invalid_subject_id")


def check_k(k: int) -> None:
    if k < 1:
        raise ValidationFailed("k must be at least 1", code="invalid_request")


def already_indexed(subject_id: str) -> ConflictError:
    del subject_id  # never echo ids of other people into messages
    return ConflictError("this subject is already in the index", code="already_indexed")


def top_hits(ids: Sequence[str], similarities: NDArray[np.float64], *, k: int) -> list[SearchHit]:
    """The ``k`` best hits, best first; ties broken by id so that results are deterministic."""
    order = sorted(range(len(ids)), key=lambda i: (-float(similarities[i]), ids[i]))[:k]
    return [SearchHit(subject_id=ids[i], similarity=float(similarities[i])) for i in order]
