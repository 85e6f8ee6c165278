"""Template similarity (higher = same palm) and multi-sample merging. Different versions are refused."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateVersionMismatch, ValidationFailed
from palmid.features.layout import CodeLayout
from palmid.features.registry import layout_for
from palmid.templates.matching import best_alignment_similarity, code_bits
from palmid.templates.template import Template

__all__ = ["compare_templates", "merge_templates", "similarity_matrix"]


def _common_layout(templates: Sequence[Template]) -> CodeLayout:
    first = templates[0]
    for other in templates[1:]:
        if (other.extractor_id, other.version) != (first.extractor_id, first.version):
            raise TemplateVersionMismatch(
                f"cannot compare templates of {first.extractor_id} v{first.version} and "
                f"{other.extractor_id} v{other.version}",
                code="template_version_mismatch",
            )
    return layout_for(first.extractor_id, first.version)


def _group_max(matrix: NDArray[np.float32], counts: Sequence[int], axis: int) -> NDArray[np.float32]:
    if all(count == 1 for count in counts):
        return matrix
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    return np.maximum.reduceat(matrix, starts, axis=axis)


def similarity_matrix(probes: Sequence[Template], gallery: Sequence[Template]) -> NDArray[np.float32]:
    """``(len(probes), len(gallery))`` similarities, equal to :func:`compare_templates` element by element."""
    if not probes or not gallery:
        return np.zeros((len(probes), len(gallery)), dtype=np.float32)
    layout = _common_layout([*probes[:1], *gallery[:1], *probes, *gallery])
    codes_a = code_bits([s for t in probes for s in t.samples], layout)
    codes_b = code_bits([s for t in gallery for s in t.samples], layout)
    matrix = best_alignment_similarity(codes_a, codes_b, layout)
    matrix = _group_max(matrix, [t.n_samples for t in probes], axis=0)
    return _group_max(matrix, [t.n_samples for t in gallery], axis=1)


def compare_templates(a: Template, b: Template) -> float:
    """Similarity in [0, 1] (fraction of agreeing code bits at the best alignment; from version 2 each block
    of the code map takes its own shift, see :mod:`palmid.templates.matching`); symmetric.

    Raises :class:`~palmid.errors.TemplateVersionMismatch` when extractor id or version differ.
    """
    return float(similarity_matrix([a], [b])[0, 0])


def merge_templates(templates: Sequence[Template]) -> Template:
    """One multi-sample template holding every sample of ``templates`` (same extractor and version)."""
    if not templates:
        raise ValidationFailed("nothing to merge: no templates", code="no_images")
    _common_layout(templates)
    samples = tuple(sample for template in templates for sample in template.samples)
    first = templates[0]
    return Template(extractor_id=first.extractor_id, version=first.version, samples=samples)
