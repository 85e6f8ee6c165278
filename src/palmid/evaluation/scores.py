"""Protocol scores: similarity matrix -> genuine / impostor lists, with failures to acquire kept in the count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from palmid.evaluation.protocol import ScoringPlan
from palmid.templates.compare import similarity_matrix
from palmid.templates.template import Template

__all__ = ["LOWEST_SIMILARITY", "ProtocolScores", "score_plan", "write_scores_csv"]

LOWEST_SIMILARITY = 0.0
"""Score of every comparison involving an image without a template (failure to acquire)."""


@dataclass(frozen=True)
class ProtocolScores:
    """Scored pairs (global manifest rows), their similarity and whether they are genuine."""

    probe_rows: NDArray[np.intp]
    gallery_rows: NDArray[np.intp]
    similarity: NDArray[np.float32]
    genuine: NDArray[np.bool_]
    rank_similarity: NDArray[np.float32]
    rank_probe_rows: NDArray[np.intp]
    rank_gallery_rows: NDArray[np.intp]

    @property
    def genuine_scores(self) -> NDArray[np.float32]:
        return self.similarity[self.genuine]

    @property
    def impostor_scores(self) -> NDArray[np.float32]:
        return self.similarity[~self.genuine]


def _matrix(
    templates: Sequence[Template | None], rows: NDArray[np.intp], cols: NDArray[np.intp]
) -> NDArray[np.float32]:
    """Similarities between ``rows`` and ``cols`` templates; missing templates score ``LOWEST_SIMILARITY``."""
    matrix = np.full((rows.size, cols.size), LOWEST_SIMILARITY, dtype=np.float32)
    valid_r = np.asarray([templates[r] is not None for r in rows], dtype=np.bool_)
    valid_c = np.asarray([templates[c] is not None for c in cols], dtype=np.bool_)
    if valid_r.any() and valid_c.any():
        probes = [t for t in (templates[r] for r in rows[valid_r]) if t is not None]
        gallery = [t for t in (templates[c] for c in cols[valid_c]) if t is not None]
        matrix[np.ix_(valid_r, valid_c)] = similarity_matrix(probes, gallery)
    return matrix


def score_plan(templates: Sequence[Template | None], plan: ScoringPlan) -> ProtocolScores:
    """Score every pair of ``plan`` (templates indexed by manifest row; ``None`` = failure to acquire)."""
    matrix = _matrix(templates, plan.probe_rows, plan.gallery_rows)
    probe_pos, gallery_pos = np.nonzero(plan.pair_mask)
    position_of_probe = {int(row): i for i, row in enumerate(plan.probe_rows)}
    position_of_gallery = {int(row): i for i, row in enumerate(plan.gallery_rows)}
    rank_r = np.asarray([position_of_probe[int(r)] for r in plan.rank_probe_rows], dtype=np.intp)
    rank_c = np.asarray([position_of_gallery[int(c)] for c in plan.rank_gallery_rows], dtype=np.intp)
    return ProtocolScores(
        probe_rows=plan.probe_rows[probe_pos],
        gallery_rows=plan.gallery_rows[gallery_pos],
        similarity=matrix[probe_pos, gallery_pos],
        genuine=plan.genuine_mask[probe_pos, gallery_pos],
        rank_similarity=matrix[np.ix_(rank_r, rank_c)],
        rank_probe_rows=plan.rank_probe_rows,
        rank_gallery_rows=plan.rank_gallery_rows,
    )


def write_scores_csv(scores: ProtocolScores, path: Path, *, image_paths: Sequence[str]) -> None:
    """``probe,gallery,similarity,genuine`` (image paths relative to the dataset) for every scored pair."""
    names = np.asarray(image_paths, dtype=object)
    chunk = 200_000
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("probe,gallery,similarity,genuine\n")
        for start in range(0, scores.similarity.size, chunk):
            part = slice(start, start + chunk)
            sims = np.char.mod("%.6f", scores.similarity[part])
            lines = [
                f"{p},{g},{s},{int(k)}\n"
                for p, g, s, k in zip(
                    names[scores.probe_rows[part]],
                    names[scores.gallery_rows[part]],
                    sims,
                    scores.genuine[part],
                    strict=True,
                )
            ]
            handle.writelines(lines)
