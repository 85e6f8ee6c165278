"""Galleries for the search benchmark: real palms (cached templates) and realistic distractor palms.

Real palms come from a dataset folder (``manifest.csv``) through the real pipeline (``roi`` detector); their
single-sample templates are cached as one ``.npz`` under a cache folder outside the repository.

Distractors must look like real palms to the index, not like uniform random bits (which are easy). A distractor
is a *mosaic* of real palms of a separate pool: its code map is cut into quadrants at a random split point
(even cells, so coarse and fine codes stay consistent) and each quadrant is copied, at its own place, from a pool
palm; with ``pieces=3`` (default) two neighbouring quadrants come from the same palm (a band), so a distractor is
mostly made of large real regions and keeps more of a real palm's global correlation (four independent quadrants
make the impostor distribution measurably narrower than real; see :mod:`palmid.index.realism`). Each piece keeps
the local structure of a real palm (principal lines, texture, bit biases, spatial correlation), and a
multi-sample distractor takes its samples from the pool palms' own different captures, so it has genuine-like
sample-to-sample variation. With 3 pieces from a pool of P palms there are
about P^3 * 50 different distractors, each generated on demand from its number (nothing is stored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ValidationFailed
from palmid.features.layout import CodeLayout
from palmid.templates.template import Template

__all__ = ["MosaicDistractors", "RealPalms", "load_real_palms"]

_SPLITS_FINE = (12, 14, 16, 18, 20)
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class RealPalms:
    """Single-sample codes of every image of a dataset (``ok`` False where the pipeline found no palm)."""

    palm_ids: tuple[str, ...]
    sessions: tuple[str, ...]
    samples: NDArray[np.uint8]
    ok: NDArray[np.bool_]
    extractor_id: str
    version: int

    def template(self, rows: Sequence[int]) -> Template:
        """One (multi-sample) template from the given image rows, all of which must be ``ok``."""
        if not rows or not all(bool(self.ok[row]) for row in rows):
            raise ValidationFailed("template rows must be acquired images", code="invalid_request")
        return Template(
            extractor_id=self.extractor_id,
            version=self.version,
            samples=tuple(self.samples[row].tobytes() for row in rows),
        )


def load_real_palms(dataset_dir: Path, *, cache_dir: Path, extractor: str, workers: int = 1) -> RealPalms:
    """Templates of every manifest image through the pipeline (``roi`` detector), cached in ``cache_dir``."""
    from palmid.evaluation.acquire import acquire_templates
    from palmid.evaluation.protocol import load_manifest
    from palmid.features.registry import get_extractor

    manifest = load_manifest(dataset_dir)
    engine = get_extractor(extractor)
    digest = hashlib.sha256()
    for entry in manifest.entries:
        digest.update(f"{entry.name},{entry.palm_id},{entry.session}\n".encode())
    key = f"{dataset_dir.name}-{engine.extractor_id}-v{engine.version}-f{_CACHE_FORMAT}-{digest.hexdigest()[:16]}"
    cache_file = cache_dir / f"{key}.npz"
    palm_ids = tuple(entry.palm_id for entry in manifest.entries)
    sessions = tuple(entry.session for entry in manifest.entries)
    sample_bytes = engine.layout.sample_bytes
    if cache_file.is_file():
        with np.load(cache_file) as data:
            samples, ok = data["samples"], data["ok"]
        if samples.shape == (len(palm_ids), sample_bytes):
            return RealPalms(palm_ids, sessions, samples, ok, engine.extractor_id, engine.version)
    acquisition = acquire_templates(
        [entry.path for entry in manifest.entries], detector="roi", extractor=extractor, workers=workers
    )
    samples = np.zeros((len(palm_ids), sample_bytes), dtype=np.uint8)
    ok = np.zeros(len(palm_ids), dtype=np.bool_)
    for row, template in enumerate(acquisition.templates):
        if template is not None:
            samples[row] = np.frombuffer(template.samples[0], dtype=np.uint8)
            ok[row] = True
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(".tmp.npz")
    np.savez(partial, samples=samples, ok=ok)
    partial.replace(cache_file)
    return RealPalms(palm_ids, sessions, samples, ok, engine.extractor_id, engine.version)


class MosaicDistractors:
    """Distractor templates ``0, 1, 2, ...`` made on demand from a pool of real palms (see module docstring)."""

    def __init__(
        self,
        pool: Sequence[NDArray[np.uint8]],
        *,
        layout: CodeLayout,
        extractor_id: str,
        version: int,
        samples_per_template: int,
        seed: int,
        pieces: int = 3,
    ) -> None:
        if pieces not in (2, 3, 4):
            raise ValidationFailed("a mosaic distractor has 2, 3 or 4 pieces", code="invalid_request")
        if len(pool) < 4 or any(len(p) == 0 for p in pool):
            raise ValidationFailed("the distractor pool needs at least 4 palms with samples", code="invalid_request")
        if layout.channels * 2 % 8 or layout.grid_cells % 2 or layout.coarse_bytes != 256:
            raise ValidationFailed("unsupported code layout for mosaic distractors", code="invalid_request")
        self._layout = layout
        self._extractor_id = extractor_id
        self._version = version
        self._k = samples_per_template
        self._seed = seed
        self._pieces = pieces
        grid = layout.grid_cells
        self._unit = layout.channels * 2 // 8  # bytes per pair of fine cells along x
        n_rot = len(layout.rotations_deg)
        self._counts = np.array([len(p) for p in pool], dtype=np.int64)
        width = int(self._counts.max())
        stacked = np.zeros((len(pool), width, layout.sample_bytes), dtype=np.uint8)
        for i, samples in enumerate(pool):
            stacked[i, : len(samples)] = samples
        self._coarse = stacked[:, :, : layout.coarse_bytes].reshape(len(pool), width, 16, 16)
        fine = stacked[:, :, layout.coarse_bytes :]
        self._fine = fine.reshape(len(pool), width, n_rot, grid, grid // 2, self._unit)

    @property
    def samples_per_template(self) -> int:
        return self._k

    def templates(self, numbers: Sequence[int] | NDArray[np.int64]) -> list[Template]:
        """The distractors with these numbers (the same number always gives the same template)."""
        numbers = np.asarray(numbers, dtype=np.int64)
        samples = self._samples(numbers)
        return [
            Template(
                extractor_id=self._extractor_id,
                version=self._version,
                samples=tuple(samples[d, s].tobytes() for s in range(self._k)),
            )
            for d in range(len(numbers))
        ]

    def _samples(self, numbers: NDArray[np.int64]) -> NDArray[np.uint8]:
        """``(n, samples_per_template, sample_bytes)`` sample blobs of the distractors ``numbers``."""
        n = len(numbers)
        n_pool = len(self._counts)
        draws = _hashed(numbers, seed=self._seed, count=6 + 4 * self._k)
        # four different pool palms: a random one, then offsets that cannot collide
        first = draws[:, 0] % n_pool
        steps = np.stack([draws[:, 1] % (n_pool - 1), draws[:, 2] % (n_pool - 2), draws[:, 3] % (n_pool - 3)], 1)
        sources = np.empty((n, 4), dtype=np.int64)
        sources[:, 0] = first
        for j in range(1, 4):
            candidate = steps[:, j - 1].copy()
            for previous in np.sort(sources[:, :j], axis=1).T:  # skip the palms already taken
                candidate += candidate >= previous
            sources[:, j] = candidate
        # fewer pieces: neighbouring quadrants share a palm (a band across the top or down the left side)
        vertical = draws[:, 5] % 2 == 1
        if self._pieces <= 3:
            sources[:, 1] = np.where(vertical, sources[:, 1], sources[:, 0])
            sources[:, 2] = np.where(vertical, sources[:, 0], sources[:, 2])
        if self._pieces == 2:
            sources[:, 3] = np.where(vertical, sources[:, 1], sources[:, 2])
        splits_fine = np.asarray(_SPLITS_FINE, dtype=np.int64)
        splits = splits_fine[(draws[:, 4:6] >> 1) % len(splits_fine)]
        picks = draws[:, 6:].reshape(n, self._k, 4) % self._counts[sources][:, None, :]
        for quadrant in range(1, 4):  # quadrants of the same palm use the same capture of it
            for earlier in range(quadrant):
                same = sources[:, quadrant] == sources[:, earlier]
                picks[:, :, quadrant] = np.where(same[:, None], picks[:, :, earlier], picks[:, :, quadrant])
        layout = self._layout
        out = np.empty((n, self._k, layout.sample_bytes), dtype=np.uint8)
        coarse = out[:, :, : layout.coarse_bytes].reshape(n, self._k, 16, 16)
        fine = out[:, :, layout.coarse_bytes :].reshape((n, self._k, *self._fine.shape[2:]))
        grid = layout.grid_cells
        # distractors with the same split points copy the same rectangles: one gather per (split, quadrant)
        for row_split in np.unique(splits[:, 0]):
            for col_split in np.unique(splits[:, 1]):
                group = np.flatnonzero((splits[:, 0] == row_split) & (splits[:, 1] == col_split))
                if group.size == 0:
                    continue
                for quadrant, (rows, cols) in enumerate(_rectangles(int(row_split), int(col_split), grid)):
                    src = sources[group, quadrant][:, None]
                    pick = picks[group, :, quadrant]
                    coarse_rows, coarse_cols = slice(rows.start // 2, rows.stop // 2), slice(cols.start, cols.stop)
                    coarse[group, :, coarse_rows, coarse_cols] = self._coarse[src, pick, coarse_rows, coarse_cols]
                    fine_cols = slice(cols.start, cols.stop)
                    fine[group, :, :, rows, fine_cols] = self._fine[src, pick, :, rows, fine_cols]
        return out


def _rectangles(row_split: int, col_split: int, grid: int) -> tuple[tuple[slice, slice], ...]:
    """Fine-grid rows and pair-of-cells columns of quadrants 0..3 (top-left, top-right, bottom-left, bottom-right).

    Columns are in units of two fine cells (= one coarse cell), rows in fine cells (two per coarse cell).
    """
    half = col_split // 2
    top, bottom = slice(0, row_split), slice(row_split, grid)
    left, right = slice(0, half), slice(half, grid // 2)
    return ((top, left), (top, right), (bottom, left), (bottom, right))


def _hashed(numbers: NDArray[np.int64], *, seed: int, count: int) -> NDArray[np.int64]:
    """``(len(numbers), count)`` non-negative pseudo-random ints, a pure function of (seed, number) (splitmix64)."""
    with np.errstate(over="ignore"):
        state = numbers.astype(np.uint64)[:, None] * np.uint64(count) + np.arange(count, dtype=np.uint64)[None, :]
        state = state + np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019)
        z = state * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(2)).astype(np.int64)
