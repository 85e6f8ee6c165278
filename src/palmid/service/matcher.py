"""The decision layer between templates and the index: thresholds from a target false-match rate, decisions out.

Nothing here returns a similarity: :meth:`Matcher.identify` gives a subject id or ``None`` and
:meth:`Matcher.verify` gives a bool. Thresholds are never configured as raw numbers; they come from the engine's
calibration for the configured false-match rates:

* verification: ``verification_fmr`` per comparison;
* identification over ``N`` enrolled palms: the per-comparison rate ``1 - (1 - identification_fpir)^(1/N)``
  (about ``FPIR / N``) that keeps the false-positive identification rate at its target, never looser than
  ``identification_fmr`` (see :func:`palmid.index.decision.per_comparison_fmr`).

Thresholds depend on how many sample pairs a comparison takes the best of (multi-sample templates), so each
candidate is checked against the threshold for its own sample count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from palmid.config import Settings
from palmid.errors import ValidationFailed
from palmid.index.base import Index
from palmid.index.decision import per_comparison_fmr
from palmid.index.fast import FastIndex
from palmid.service.engine import Recognizer
from palmid.templates.template import Template

#: False-match rate for "these enrollment photos show one palm" (a mix-up guard, not an access decision: a
#: merged template of two palms would match either person).
ENROLLMENT_CONSISTENCY_FMR = 1e-4

#: The smallest per-comparison false-match rate asked of the calibration (very large galleries).
MIN_FMR = 1e-12

#: How many best candidates are checked against their own threshold (thresholds depend on sample counts).
CANDIDATES = 3


@dataclass(frozen=True, kw_only=True)
class DecisionPolicy:
    """Target error rates (from :class:`~palmid.config.Settings`)."""

    identification_fmr: float
    identification_fpir: float
    verification_fmr: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionPolicy:
        return cls(
            identification_fmr=settings.identification_fmr,
            identification_fpir=settings.identification_fpir,
            verification_fmr=settings.verification_fmr,
        )

    def identification_fmr_for(self, gallery_size: int) -> float:
        """Per-comparison false-match rate for a 1:N search over ``gallery_size`` palms."""
        return per_comparison_fmr(
            fpir=self.identification_fpir, gallery_size=gallery_size, max_fmr=self.identification_fmr, min_fmr=MIN_FMR
        )


class Matcher:
    """Holds the in-memory index and turns similarities into decisions. Thread-safe."""

    def __init__(self, *, recognizer: Recognizer, policy: DecisionPolicy, index: Index[Template]) -> None:
        self._recognizer = recognizer
        self._policy = policy
        self._index = index
        self._sample_counts: dict[str, int] = {}
        self._thresholds: dict[tuple[float, int], float] = {}
        self._lock = threading.Lock()

    @property
    def gallery_size(self) -> int:
        return len(self._index)

    def rebuild(self, entries: Iterable[tuple[str, Template]], *, progress: Callable[[int], None] | None = None) -> int:
        """Load every enrolled template (start-up, bulk); returns how many were loaded."""

        def counted() -> Iterator[tuple[str, Template]]:
            for subject_id, template in entries:
                with self._lock:
                    self._sample_counts[subject_id] = template.n_samples
                yield subject_id, template

        return self._index.add_many(counted(), progress=progress)

    @property
    def coded_index(self) -> FastIndex[Template] | None:
        """The index, when it takes precomputed codes (``code_of`` / ``add_codes``); else ``None``."""
        return self._index if isinstance(self._index, FastIndex) else None

    def add_codes(self, subject_ids: Sequence[str], codes: NDArray[np.uint8], *, sample_counts: Sequence[int]) -> None:
        """Bulk add by stored index codes (start-up rebuild); ``sample_counts``: samples of each palm's template."""
        index = self.coded_index
        if index is None or len(sample_counts) != len(subject_ids):
            raise ValidationFailed("this index takes no codes, or sample counts do not match", code="invalid_request")
        index.add_codes(subject_ids, codes)
        with self._lock:
            self._sample_counts.update(zip(subject_ids, sample_counts, strict=True))

    def add(self, subject_id: str, template: Template) -> None:
        with self._lock:
            known = self._sample_counts.get(subject_id)
            self._sample_counts[subject_id] = template.n_samples
        try:
            self._index.add(subject_id, template)
        except BaseException:
            with self._lock:
                if known is None:
                    self._sample_counts.pop(subject_id, None)
                else:
                    self._sample_counts[subject_id] = known
            raise

    def remove(self, subject_id: str) -> bool:
        """Remove at once: no search that starts after this returns can find ``subject_id``."""
        removed = self._index.remove(subject_id)
        with self._lock:
            self._sample_counts.pop(subject_id, None)
        return removed

    def __contains__(self, subject_id: object) -> bool:
        return subject_id in self._index

    def identify(self, probe: Template) -> str | None:
        """The enrolled subject whose palm ``probe`` shows, or ``None``. Decision only."""
        gallery_size = len(self._index)
        if gallery_size == 0:
            return None
        fmr = self._policy.identification_fmr_for(gallery_size)
        for hit in self._index.search(probe, k=min(CANDIDATES, gallery_size)):
            with self._lock:
                reference_samples = self._sample_counts.get(hit.subject_id)
            if reference_samples is None:  # removed while searching
                continue
            if hit.similarity >= self._threshold(fmr, probe.n_samples * reference_samples):
                return hit.subject_id
        return None

    def verify(self, probe: Template, reference: Template) -> bool:
        """Whether ``probe`` and ``reference`` show the same palm at the verification false-match rate."""
        threshold = self._threshold(self._policy.verification_fmr, probe.n_samples * reference.n_samples)
        return self._recognizer.compare(probe, reference) >= threshold

    def inconsistent_samples(self, templates: Sequence[Template]) -> list[int]:
        """Indices of enrollment templates that are not linked to the main group by same-palm matches.

        Photos are linked when they match at :data:`ENROLLMENT_CONSISTENCY_FMR`; the largest linked group (the one
        with the first photo on ties) is the palm being enrolled, every photo outside it is reported.
        """
        count = len(templates)
        parent = list(range(count))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(count):
            for j in range(i + 1, count):
                pairs = templates[i].n_samples * templates[j].n_samples
                threshold = self._threshold(ENROLLMENT_CONSISTENCY_FMR, pairs)
                if root(i) != root(j) and self._recognizer.compare(templates[i], templates[j]) >= threshold:
                    parent[root(j)] = root(i)
        sizes: dict[int, int] = {}
        for i in range(count):
            sizes[root(i)] = sizes.get(root(i), 0) + 1
        main = max(sizes, key=lambda r: (sizes[r], r == root(0)))
        return [i for i in range(count) if root(i) != main]

    def _threshold(self, fmr: float, n_sample_pairs: int) -> float:
        key = (fmr, n_sample_pairs)
        with self._lock:
            cached = self._thresholds.get(key)
        if cached is not None:
            return cached
        threshold = self._recognizer.threshold_for_fmr(fmr, n_sample_pairs=n_sample_pairs)
        with self._lock:
            if len(self._thresholds) > 4096:
                self._thresholds.clear()
            self._thresholds[key] = threshold
        return threshold
