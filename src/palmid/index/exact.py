"""The reference index: the full comparison of the probe against every enrolled template.

Exact by construction and linear in the gallery size; used by tests, by the benchmark as ground truth and for small
galleries. Thread-safe (readers-writer lock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from palmid.index.base import (
    Matcher,
    ReadWriteLock,
    SearchHit,
    already_indexed,
    check_k,
    check_subject_id,
    top_hits,
)

T = TypeVar("T")


class ExactIndex(Generic[T]):
    """Every enrolled template kept whole; ``search`` compares the probe with all of them."""

    def __init__(self, *, matcher: Matcher[T]) -> None:
        self._matcher = matcher
        self._templates: dict[str, T] = {}
        self._lock = ReadWriteLock()

    def add(self, subject_id: str, template: T) -> None:
        self.add_many([(subject_id, template)])

    def add_many(self, items: Iterable[tuple[str, T]], *, progress: Callable[[int], None] | None = None) -> int:
        """Add all items or none of them (duplicate ids are refused before anything is added)."""
        batch = list(items)
        for subject_id, _ in batch:
            check_subject_id(subject_id)
        with self._lock.write():
            seen: set[str] = set()
            for subject_id, _ in batch:
                if subject_id in self._templates or subject_id in seen:
                    raise already_indexed(subject_id)
                seen.add(subject_id)
            self._templates.update(batch)
        if progress is not None:
            progress(len(batch))
        return len(batch)

    def remove(self, subject_id: str) -> bool:
        with self._lock.write():
            return self._templates.pop(subject_id, None) is not None

    def search(self, template: T, *, k: int = 1) -> list[SearchHit]:
        check_k(k)
        with self._lock.read():
            ids = list(self._templates)
            similarities = self._matcher.compare_many(template, [self._templates[i] for i in ids])
        return top_hits(ids, similarities, k=k)

    def search_many(self, templates: Sequence[T], *, k: int = 1) -> list[list[SearchHit]]:
        return [self.search(template, k=k) for template in templates]

    def nbytes(self) -> int:
        with self._lock.read():
            return sum(self._matcher.template_nbytes(t) for t in self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)

    def __contains__(self, subject_id: object) -> bool:
        return subject_id in self._templates
