"""The index's view of the recognition engine's templates (:mod:`palmid.templates`).

The index code of a template (``CODE_BYTES`` = 552 bytes) is the engine's 2048-bit coarse code (8x8 cells x 4 bytes),
followed by the engine's shift-tolerant aligned code (296 bytes, :func:`palmid.templates.coarse.aligned_code`; the
probe side gives 25 shifted codes, ``aligned_probe_codes``). The fast index scans the first ``HEAD_BYTES`` (the whole
coarse code) of every palm, ranks the shortlist by the aligned code alone and compares the best few in full. The
coarse code is byte-reordered so that a narrower head (``FastIndex(head_bytes=64)``, ``palmid bench search
--head-bytes``) scans its least correlated bytes first (the bytes at odd positions of a 16x16 view; Hamming distance
does not depend on the byte order). Measured at a million palms (Tongji mates among mosaic distractors), the 64-byte
head keeps the mate in 96% of mated searches, the whole coarse code in 99%. The full comparison is the engine's
shift- and rotation-tolerant :func:`similarity_matrix`, computed for one probe against many references by
:mod:`palmid.index.rerank` (same values, several times faster).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateError, TemplateVersionMismatch
from palmid.features.registry import layout_for
from palmid.index.decision import ThresholdForFmr
from palmid.index.rerank import prepare_probe, probe_similarities
from palmid.templates.coarse import (
    ALIGNED_CODE_BYTES,
    ALIGNED_HEAD_BYTES,
    COARSE_CODE_BYTES,
    aligned_block,
    aligned_codes,
    aligned_probe_codes,
)
from palmid.templates.compare import similarity_matrix
from palmid.templates.template import Template

__all__ = ["CODE_BYTES", "CODE_FORMAT_VERSION", "HEAD_BYTES", "EngineMatcher", "engine_threshold"]

_GRID = 16
HEAD_BYTES = COARSE_CODE_BYTES
"""Bytes of the coarse code scanned exhaustively by the fast index (all of it)."""
CODE_BYTES = COARSE_CODE_BYTES + ALIGNED_CODE_BYTES
"""Index code per template: reordered coarse code, then the aligned code."""
CODE_FORMAT_VERSION = 1
"""Version of what :meth:`EngineMatcher.coarse_codes` computes from a template. Codes are stored next to the
templates (start-up rebuild without recomputing them): bump this whenever the codes of an unchanged template would
change (byte order, majority rule, aligned code), so stored codes of the old format are recomputed, never used."""


def _cell_order() -> NDArray[np.intp]:
    rows, cols = np.divmod(np.arange(_GRID * _GRID), _GRID)
    spread = (rows % 2 == 1) & (cols % 2 == 1)  # every other row and column: 8x8 cells, least correlated
    return np.concatenate([np.flatnonzero(spread), np.flatnonzero(~spread)]).astype(np.intp)


class EngineMatcher:
    """:class:`~palmid.index.base.Matcher` for :class:`~palmid.templates.template.Template`."""

    def __init__(self) -> None:
        if COARSE_CODE_BYTES != _GRID * _GRID:
            raise ValueError("coarse code layout changed: update the index's cell order")
        self._order = _cell_order()

    @property
    def code_bytes(self) -> int:
        return CODE_BYTES

    @property
    def head_bytes(self) -> int:
        return HEAD_BYTES

    @property
    def aligned_bytes(self) -> int:
        return ALIGNED_CODE_BYTES

    @property
    def aligned_head_bytes(self) -> int:
        return ALIGNED_HEAD_BYTES

    def coarse_code(self, template: Template) -> NDArray[np.uint8]:
        """The index code of one template (``coarse_codes`` of one)."""
        code: NDArray[np.uint8] = self.coarse_codes([template])[0]
        return code

    def aligned_probe_codes(self, template: Template) -> NDArray[np.uint8]:
        """``(25 * samples, ALIGNED_CODE_BYTES)`` shifted aligned codes of a probe."""
        return aligned_probe_codes(template)

    def coarse_codes(self, templates: Sequence[Template]) -> NDArray[np.uint8]:
        """``coarse_code`` of each template (byte order of the index), vectorised over templates of equal size."""
        out = np.empty((len(templates), CODE_BYTES), dtype=np.uint8)
        groups: dict[tuple[str, int, int], list[int]] = {}
        for i, template in enumerate(templates):
            groups.setdefault((template.extractor_id, template.version, template.n_samples), []).append(i)
        for (extractor_id, version, n_samples), rows in groups.items():
            layout = layout_for(extractor_id, version)
            if layout.coarse_bytes != COARSE_CODE_BYTES:
                raise TemplateVersionMismatch(
                    "coarse code size differs from the index's", code="template_version_mismatch"
                )
            if any(len(sample) != layout.sample_bytes for i in rows for sample in templates[i].samples):
                raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
            prefix = b"".join(sample[:COARSE_CODE_BYTES] for i in rows for sample in templates[i].samples)
            raw = np.frombuffer(prefix, dtype=np.uint8).reshape(len(rows), n_samples, COARSE_CODE_BYTES)
            if n_samples <= 2:  # one sample, or a 1-1 tie everywhere they differ: the first sample's bits
                codes = raw[:, 0]
            elif n_samples == 3:  # bitwise majority of three, on packed bytes
                a, b, c = raw[:, 0], raw[:, 1], raw[:, 2]
                codes = (a & b) | (a & c) | (b & c)
            else:  # bitwise majority of the samples, ties -> the first sample's bit (as coarse_code does)
                bits = np.unpackbits(raw, axis=2)
                votes = 2 * bits.sum(axis=1, dtype=np.int32) - n_samples
                codes = np.packbits(np.where(votes == 0, bits[:, 0], votes > 0).astype(np.uint8), axis=1)
            out[rows, :COARSE_CODE_BYTES] = codes[:, self._order]
            block = aligned_block(layout)
            fine = b"".join(sample[block] for i in rows for sample in templates[i].samples)
            blocks = np.frombuffer(fine, dtype=np.uint8).reshape(len(rows), n_samples, -1)
            out[rows, COARSE_CODE_BYTES:] = aligned_codes(blocks, layout)
        return out

    def compare(self, probe: Template, reference: Template) -> float:
        return float(similarity_matrix([probe], [reference])[0, 0])

    def compare_many(self, probe: Template, references: Sequence[Template]) -> NDArray[np.float64]:
        """Equal to ``similarity_matrix([probe], references)[0]``, computed as in :mod:`palmid.index.rerank`."""
        for reference in references:
            if (reference.extractor_id, reference.version) != (probe.extractor_id, probe.version):
                raise TemplateVersionMismatch(
                    "cannot compare templates of different extractors or versions", code="template_version_mismatch"
                )
        layout = layout_for(probe.extractor_id, probe.version)
        if not references:
            return np.zeros(0, dtype=np.float64)
        alignments = prepare_probe(probe.samples, layout)
        return probe_similarities(alignments, [reference.samples for reference in references])

    def template_nbytes(self, template: Template) -> int:
        return sum(len(sample) for sample in template.samples)


def engine_threshold(*, n_sample_pairs: int = 1) -> ThresholdForFmr:
    """The engine's calibrated similarity threshold for a per-comparison FMR (default extractor)."""

    from palmid.templates.calibration import threshold_for_fmr

    def threshold(fmr: float) -> float:
        return float(threshold_for_fmr(fmr, n_sample_pairs=n_sample_pairs))

    return threshold
