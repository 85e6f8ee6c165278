"""Benchmark data: the palm split (enrolled / outsiders / distractor pool) and the benchmark's template source."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from palmid.errors import ValidationFailed
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.index.gallery import MosaicDistractors, RealPalms, load_real_palms
from palmid.templates.template import Template

if TYPE_CHECKING:
    from palmid.index.benchmark import SearchBenchOptions

__all__ = ["BenchSplit", "BenchTemplates", "split_palms"]

DISTRACTOR_PREFIX = "d:"
REAL_PREFIX = "real:"


@dataclass(frozen=True)
class BenchSplit:
    """Enrolled templates, mated and non-mated searches (``None`` = failure to acquire), distractor maker."""

    enrolled: list[tuple[str, Template]]
    mated: list[tuple[str, Template | None]]
    nonmated: list[tuple[str, Template | None]]
    distractors: MosaicDistractors


def split_palms(options: SearchBenchOptions, *, log: Callable[[str], None]) -> BenchSplit:
    """Split the dataset's palms in thirds (enrolled, outsiders, pool) with ``options.seed``."""
    log(f"loading real palms from {options.dataset_dir} (cache {options.cache_dir})")
    real = load_real_palms(
        options.dataset_dir, cache_dir=options.cache_dir, extractor=DEFAULT_EXTRACTOR, workers=options.workers
    )
    sessions = sorted(set(real.sessions))
    if len(sessions) < 2:
        raise ValidationFailed("the search benchmark needs a dataset with two sessions", code="bad_manifest")
    first, second = sessions[0], sessions[1]
    palms = sorted(set(real.palm_ids))
    rng = np.random.default_rng(options.seed)
    order = [palms[i] for i in rng.permutation(len(palms))]
    third = len(order) // 3
    enrolled_palms, outsider_palms, pool_palms = order[:third], order[third : 2 * third], order[2 * third :]
    rows_of: dict[tuple[str, str], list[int]] = {}
    for row, (palm, session) in enumerate(zip(real.palm_ids, real.sessions, strict=True)):
        rows_of.setdefault((palm, session), []).append(row)
    enrolled: list[tuple[str, Template]] = []
    mated: list[tuple[str, Template | None]] = []
    for palm in enrolled_palms:
        good = [row for row in rows_of.get((palm, first), []) if real.ok[row]][: options.enroll_samples]
        if not good:
            continue  # failure to enroll: the palm is left out (reported through the enrolled count)
        enrolled.append((REAL_PREFIX + palm, real.template(good)))
        mated.extend((REAL_PREFIX + palm, _probe(real, row)) for row in rows_of.get((palm, second), []))
    nonmated = [  # every image of a never-enrolled palm, both sessions: more searches for the FPIR estimate
        (REAL_PREFIX + palm, _probe(real, row))
        for palm in outsider_palms
        for session in (first, second)
        for row in rows_of.get((palm, session), [])
    ]
    pool = [
        real.samples[[row for s in sessions for row in rows_of.get((palm, s), []) if real.ok[row]]]
        for palm in pool_palms
    ]
    engine = get_extractor(DEFAULT_EXTRACTOR)
    distractors = MosaicDistractors(
        [p for p in pool if len(p)],
        layout=engine.layout,
        extractor_id=real.extractor_id,
        version=real.version,
        samples_per_template=options.enroll_samples,
        seed=options.seed,
    )
    shuffle = np.random.default_rng(options.seed + 1)
    mated = [mated[i] for i in shuffle.permutation(len(mated))]
    nonmated = [nonmated[i] for i in shuffle.permutation(len(nonmated))]
    log(f"{len(enrolled)} enrolled palms, {len(nonmated)} non-mated probes, pool of {len(pool)} palms")
    return BenchSplit(enrolled=enrolled, mated=mated, nonmated=nonmated, distractors=distractors)


def _probe(real: RealPalms, row: int) -> Template | None:
    return real.template([row]) if real.ok[row] else None


class BenchTemplates:
    """The benchmark's :class:`~palmid.index.base.TemplateSource`: real templates in a dict, distractors remade.

    It stands in for the service's encrypted store: the index keeps only codes, and fetches the full templates of
    its few best candidates from here.
    """

    def __init__(self, distractors: MosaicDistractors) -> None:
        self._distractors = distractors
        self._real: dict[str, Template] = {}
        self._distractor_numbers: set[int] = set()

    def put(self, subject_id: str, template: Template) -> None:
        if subject_id.startswith(DISTRACTOR_PREFIX):
            self._distractor_numbers.add(int(subject_id[len(DISTRACTOR_PREFIX) :]))
        else:
            self._real[subject_id] = template

    def discard(self, subject_id: str) -> None:
        if subject_id.startswith(DISTRACTOR_PREFIX):
            self._distractor_numbers.discard(int(subject_id[len(DISTRACTOR_PREFIX) :]))
        else:
            self._real.pop(subject_id, None)

    def get_many(self, subject_ids: Sequence[str]) -> list[Template | None]:
        numbers = [
            int(i[len(DISTRACTOR_PREFIX) :])
            for i in subject_ids
            if i.startswith(DISTRACTOR_PREFIX) and int(i[len(DISTRACTOR_PREFIX) :]) in self._distractor_numbers
        ]
        made = dict(zip(numbers, self._distractors.templates(numbers), strict=True)) if numbers else {}
        out: list[Template | None] = []
        for subject_id in subject_ids:
            if subject_id.startswith(DISTRACTOR_PREFIX):
                out.append(made.get(int(subject_id[len(DISTRACTOR_PREFIX) :])))
            else:
                out.append(self._real.get(subject_id))
        return out

    def enrolled_ids(self, limit: int) -> list[str]:
        """Every id held (real first), at most ``limit``."""
        ids = list(self._real)
        ids.extend(f"{DISTRACTOR_PREFIX}{n}" for n in sorted(self._distractor_numbers))
        return ids[:limit]

    def nbytes(self) -> int:
        real = sum(len(s) for t in self._real.values() for s in t.samples)
        return real + sys.getsizeof(self._real) + sys.getsizeof(self._distractor_numbers)
