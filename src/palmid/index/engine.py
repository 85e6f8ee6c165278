"""The index's view of the recognition engine's templates (:mod:`palmid.templates`).

The index code of a template (``CODE_BYTES`` = 392 bytes) is the engine's scan code (96 bytes,
:mod:`palmid.templates.scan`: a centred disc of 64 cells of the 0-degree fine code) followed by its aligned code
(296 bytes, :func:`palmid.templates.coarse.aligned_code`). The fast index compares the scan code of EVERY palm with
the probe's shifted scan codes (the smallest distance over 13 or 25 shifts), ranks the shortlist by the aligned code
(first its half over the probe's 25 shifted 0-degree codes, then the whole code over those shifts at the probe's
three stored rotations) and compares the best few in full: the engine's shift- and rotation-tolerant
:func:`similarity_matrix`, computed for one probe against many references by :mod:`palmid.index.rerank` (same
values, several times faster).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateError, TemplateVersionMismatch
from palmid.features.registry import layout_for
from palmid.index.base import AlignedProbeCodes
from palmid.index.decision import ThresholdForFmr
from palmid.index.rerank import prepare_probe, probe_similarities
from palmid.templates.coarse import (
    ALIGNED_CODE_BYTES,
    ALIGNED_HEAD_BYTES,
    ALIGNED_MAX_SHIFT_CELLS,
    aligned_block,
    aligned_codes,
    aligned_probe_codes,
)
from palmid.templates.compare import similarity_matrix
from palmid.templates.scan import SCAN_CODE_BYTES, scan_codes, scan_probe_codes
from palmid.templates.template import Template

__all__ = ["CODE_BYTES", "CODE_FORMAT_VERSION", "SCAN_BYTES", "EngineMatcher", "engine_threshold"]

ALIGNED_SHIFTS = (2 * ALIGNED_MAX_SHIFT_CELLS + 1) ** 2
"""Shifted aligned codes per probe sample and rotation."""
SCAN_BYTES = SCAN_CODE_BYTES
"""Leading bytes of the index code compared with every palm (the scan code)."""
CODE_BYTES = SCAN_CODE_BYTES + ALIGNED_CODE_BYTES
"""Index code per template: the scan code, then the aligned code."""
CODE_FORMAT_VERSION = 2
"""Version of what :meth:`EngineMatcher.index_codes` computes from a template. Codes are stored next to the
templates (start-up rebuild without recomputing them): bump this whenever the codes of an unchanged template would
change (cells, byte order, majority rule, aligned code), so stored codes of the old format are recomputed, never
used. Version 1 was the 256-byte coarse code + the aligned code."""


class EngineMatcher:
    """:class:`~palmid.index.base.Matcher` for :class:`~palmid.templates.template.Template`."""

    @property
    def code_bytes(self) -> int:
        return CODE_BYTES

    @property
    def scan_bytes(self) -> int:
        return SCAN_BYTES

    @property
    def aligned_bytes(self) -> int:
        return ALIGNED_CODE_BYTES

    @property
    def aligned_head_bytes(self) -> int:
        return ALIGNED_HEAD_BYTES

    def index_code(self, template: Template) -> NDArray[np.uint8]:
        """The index code of one template (``index_codes`` of one)."""
        code: NDArray[np.uint8] = self.index_codes([template])[0]
        return code

    def scan_probe_codes(self, template: Template, *, dense: bool = False) -> NDArray[np.uint8]:
        """``(shifts * samples, SCAN_BYTES)`` shifted scan codes of a probe (13 shifts, or 25 when ``dense``)."""
        return scan_probe_codes(template, dense=dense)

    def aligned_probe_codes(self, template: Template) -> AlignedProbeCodes:
        """The probe's 25 shifted aligned codes per sample at 0 degrees (``unrotated``), and those followed by the
        same at the other stored rotations (``rotated``, a view: made once)."""
        rotated = aligned_probe_codes(template, rotated=True)  # the 0-degree codes come first
        return AlignedProbeCodes(unrotated=rotated[: ALIGNED_SHIFTS * template.n_samples], rotated=rotated)

    def index_codes(self, templates: Sequence[Template]) -> NDArray[np.uint8]:
        """``index_code`` of each template, vectorised over templates of equal size."""
        out = np.empty((len(templates), CODE_BYTES), dtype=np.uint8)
        groups: dict[tuple[str, int, int], list[int]] = {}
        for i, template in enumerate(templates):
            groups.setdefault((template.extractor_id, template.version, template.n_samples), []).append(i)
        for (extractor_id, version, n_samples), rows in groups.items():
            layout = layout_for(extractor_id, version)
            if any(len(sample) != layout.sample_bytes for i in rows for sample in templates[i].samples):
                raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
            block = aligned_block(layout)
            fine = b"".join(sample[block] for i in rows for sample in templates[i].samples)
            blocks = np.frombuffer(fine, dtype=np.uint8).reshape(len(rows), n_samples, -1)
            out[rows, :SCAN_BYTES] = scan_codes(blocks, layout)
            out[rows, SCAN_BYTES:] = aligned_codes(blocks, layout)
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
