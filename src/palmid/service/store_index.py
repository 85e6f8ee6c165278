"""The identification index over the encrypted store: only compact codes in memory, full templates read on demand.

At a million palms the full templates (~4.9 KB per sample, three samples per palm) do not belong in RAM: the index
keeps its codes (~0.6 KB per palm) and, for each search, reads and decrypts the full templates of its few best
candidates (``rerank_k``, 16 by default) from the store through :class:`StoreTemplates`. Nothing is cached, so an erased
person's template is gone from memory as soon as their rows are deleted and their data key destroyed.

:func:`rebuild_from_store` is the start-up rebuild, with a progress log: from the index codes stored next to the
templates when the store keeps them and the index takes them (:mod:`palmid.service.search_codes`: ~0.6 KB read and
decrypted per palm, no template parsed; missing or stale codes are recomputed from the templates and stored), else
from the templates (every template decrypted once, its codes computed, the template dropped again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from palmid.service.matcher import Matcher
from palmid.service.search_codes import CodedTemplateStore, rebuild_from_codes
from palmid.templates.template import Template

log = logging.getLogger(__name__)

#: The rebuild logs its progress every this many palms.
REBUILD_LOG_EVERY = 100_000


class TemplateStore(Protocol):
    """What the index needs from the store (:class:`palmid.storage.repository.Store` implements it)."""

    def iter_templates(self) -> Iterator[tuple[str, bytes]]:
        """(subject_id, decrypted template bytes) of everyone enrolled."""
        ...

    def load_templates(self, *, subject_ids: Sequence[str]) -> dict[str, bytes]:
        """Decrypted template bytes of those subjects still enrolled (unknown or erased ids are absent)."""
        ...


class StoreTemplates:
    """:class:`~palmid.index.base.TemplateSource` backed by the encrypted store.

    ``put`` and ``discard`` do nothing: the store is the source of truth (enrollment stores the template before the
    index adds the palm; erasure deletes the rows and destroys the data key). ``get_many`` reads the batch in one
    query and decrypts it; ``None`` marks an id the store no longer has (erased while the search ran), which the
    index drops. ``nbytes`` is 0: no template is kept in memory. Errors (a missing key for a stored row, a tampered
    ciphertext, a corrupt template) are raised, never turned into a silent miss.
    """

    def __init__(self, *, store: TemplateStore) -> None:
        self._store = store

    def put(self, subject_id: str, template: Template) -> None:
        del subject_id, template  # already in the store

    def discard(self, subject_id: str) -> None:
        del subject_id  # erasure removes it from the store

    def get_many(self, subject_ids: Sequence[str]) -> list[Template | None]:
        if not subject_ids:
            return []
        stored = self._store.load_templates(subject_ids=subject_ids)
        parsed = {subject_id: Template.from_bytes(blob) for subject_id, blob in stored.items()}
        return [parsed.get(subject_id) for subject_id in subject_ids]

    def nbytes(self) -> int:
        return 0


@dataclass(frozen=True, kw_only=True)
class RebuildReport:
    """How the start-up rebuild went."""

    loaded: int
    elapsed_s: float
    recomputed: int = 0
    """Palms whose stored code was missing or of another format: computed from the template (and stored)."""

    @property
    def per_s(self) -> float:
        return self.loaded / self.elapsed_s if self.elapsed_s > 0 else 0.0


class RebuildProgress:
    """``progress(count)`` callback of the index's bulk add: logs every ``every`` palms with the rate so far."""

    def __init__(self, *, every: int, clock: Callable[[], float], started: float) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self._every = every
        self._clock = clock
        self._started = started
        self._next = every

    def __call__(self, count: int) -> None:
        if count < self._next:
            return
        self._next = (count // self._every + 1) * self._every
        elapsed_s = self._clock() - self._started
        per_s = count / elapsed_s if elapsed_s > 0 else 0.0
        log.info("index rebuild: %d palms loaded (%.0f palms/s)", count, per_s, extra={"loaded": count, "per_s": per_s})


def rebuild_from_store(
    matcher: Matcher,
    store: TemplateStore,
    *,
    log_every: int = REBUILD_LOG_EVERY,
    clock: Callable[[], float] = time.perf_counter,
) -> RebuildReport:
    """Load every enrolled template into ``matcher``'s index (start-up): decrypt, parse, add in bulk, log progress."""
    started = clock()
    progress = RebuildProgress(every=log_every, clock=clock, started=started)
    recomputed = 0
    coded = matcher.coded_index
    # codes only when the index reads its templates from this store (an in-memory source would lack them)
    if isinstance(store, CodedTemplateStore) and coded is not None and isinstance(coded.templates, StoreTemplates):
        counts = rebuild_from_codes(matcher, store, progress=progress)
        loaded, recomputed = counts.from_codes + counts.recomputed, counts.recomputed
    else:
        loaded = matcher.rebuild(
            ((subject_id, Template.from_bytes(blob)) for subject_id, blob in store.iter_templates()), progress=progress
        )
    report = RebuildReport(loaded=loaded, elapsed_s=clock() - started, recomputed=recomputed)
    log.info(
        "index rebuilt from the store: %d palms in %.1f s (%.0f palms/s; %d codes recomputed from templates)",
        report.loaded,
        report.elapsed_s,
        report.per_s,
        report.recomputed,
        extra={
            "enrolled": report.loaded,
            "elapsed_s": round(report.elapsed_s, 3),
            "per_s": round(report.per_s, 1),
            "recomputed": report.recomputed,
        },
    )
    return report
