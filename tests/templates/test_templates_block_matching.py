"""Version 2 matching: each block of the code map takes its own shift (tolerance to non-rigid deformation)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))
from palm_textures import palm_texture, roi_from

from palmid.detect.palm import PalmROI
from palmid.errors import TemplateVersionMismatch
from palmid.features.layout import CodeLayout
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor, layout_for
from palmid.templates.compare import compare_templates, merge_templates, similarity_matrix
from palmid.templates.matching import best_alignment_similarity, block_window, probe_similarities

CURRENT = get_extractor(DEFAULT_EXTRACTOR)
LEGACY = get_extractor("gabor-bocv@1")


def _random_bits(seed: int, n: int, layout: CodeLayout) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *layout.code_shape)) < 0.5


def test_current_version_is_block_matching_with_the_codes_of_version_1() -> None:
    assert (CURRENT.extractor_id, CURRENT.version, CURRENT.layout.match_blocks) == ("gabor-bocv", 2, 2)
    assert (LEGACY.extractor_id, LEGACY.version, LEGACY.layout.match_blocks) == ("gabor-bocv", 1, 1)
    assert replace(CURRENT.layout, match_blocks=1) == LEGACY.layout
    roi = roi_from(palm_texture(11))
    assert CURRENT.extract(roi).samples == LEGACY.extract(roi).samples
    assert layout_for("gabor-bocv", 1) == LEGACY.layout
    assert layout_for("gabor-bocv", 2) == CURRENT.layout
    for extractor_id, version in (("gabor-bocv", 3), ("gabor-bocv@1", 1), ("nope", 1)):
        with pytest.raises(TemplateVersionMismatch):
            layout_for(extractor_id, version)


def test_versions_1_and_2_are_never_compared() -> None:
    roi = roi_from(palm_texture(12))
    old, new = LEGACY.extract(roi), CURRENT.extract(roi)
    with pytest.raises(TemplateVersionMismatch) as caught:
        compare_templates(old, new)
    assert caught.value.code == "template_version_mismatch"
    with pytest.raises(TemplateVersionMismatch):
        merge_templates([old, new])
    assert compare_templates(old, old) == pytest.approx(1.0)  # stored version-1 templates still compare


def test_blocks_partition_every_cell_pair_for_every_shift() -> None:
    layout = CURRENT.layout
    size = layout.grid_cells
    for shift in range(-layout.max_shift_cells, layout.max_shift_cells + 1):
        covered = np.zeros(size, dtype=int)
        for lo, hi in {(r0, r1) for r0, r1, _, _ in layout.blocks}:
            rows_a, rows_b, n = block_window(lo, hi, shift, size)
            assert rows_b.start == rows_a.start - shift and n == rows_a.stop - rows_a.start
            covered[rows_a] += 1
        overlap = slice(max(0, shift), size + min(0, shift))
        assert (covered[overlap] == 1).all() and covered.sum() == size - abs(shift)


def test_one_block_equals_plain_best_shift_matching() -> None:
    layout = LEGACY.layout
    a, b = _random_bits(1, 3, layout), _random_bits(2, 4, layout)
    a[0] = b[1]
    a[1, :, 1:] = b[2, :, :-1]  # shifted copy
    got = best_alignment_similarity(a, b, layout)
    want = np.zeros((3, 4), np.float32)
    size = layout.grid_cells
    for dy, dx in layout.shifts:
        ra, ca = slice(max(0, dy), size + min(0, dy)), slice(max(0, dx), size + min(0, dx))
        rb, cb = slice(max(0, -dy), size + min(0, -dy)), slice(max(0, -dx), size + min(0, -dx))
        for rot_a, rot_b in layout.rotation_pairs:
            agree = (a[:, None, rot_a, ra, ca] == b[None, :, rot_b, rb, cb]).mean(axis=(2, 3, 4))
            want = np.maximum(want, agree)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[0, 1] == pytest.approx(1.0) and got[1, 2] == pytest.approx(1.0)


def test_block_matching_is_symmetric_and_at_least_the_global_score() -> None:
    a, b = _random_bits(3, 5, CURRENT.layout), _random_bits(4, 6, CURRENT.layout)
    b[0, :, 16:] = a[0, :, 16:]
    blocks = best_alignment_similarity(a, b, CURRENT.layout)
    np.testing.assert_array_equal(blocks, best_alignment_similarity(b, a, CURRENT.layout).T)
    assert (blocks >= best_alignment_similarity(a, b, LEGACY.layout) - 1e-6).all()
    assert blocks[0, 0] > 0.7 > blocks[1:, 1:].max()


def _stretched(texture: np.ndarray, factor: float) -> PalmROI:
    """The ROI of a palm stretched vertically about its centre (a non-rigid change no global shift undoes)."""
    size = texture.shape[0]
    warp = np.float32([[1, 0, 0], [0, factor, (1 - factor) * (size - 1) / 2]])
    moved = cv2.warpAffine(texture, warp, (size, size), borderMode=cv2.BORDER_REFLECT)
    return roi_from(moved)


def test_block_matching_tolerates_deformation_better_than_one_shift() -> None:
    gains = []
    for seed in range(4):
        texture = palm_texture(seed)
        reference, stretched = _stretched(texture, 1.0), _stretched(texture, 1.12)
        new = compare_templates(CURRENT.extract(reference), CURRENT.extract(stretched))
        old = compare_templates(LEGACY.extract(reference), LEGACY.extract(stretched))
        gains.append(new - old)
    assert min(gains) > 0.0


def test_probe_similarities_equal_the_similarity_matrix() -> None:
    templates = [CURRENT.extract(roi_from(palm_texture(seed), dx_px=seed % 3)) for seed in range(5)]
    probe = merge_templates(templates[:2])
    references = [templates[2], merge_templates(templates[3:]), templates[0]]
    want = similarity_matrix([probe], references)[0]
    got = probe_similarities(probe.samples, [r.samples for r in references], CURRENT.layout)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[2] == pytest.approx(1.0)
    assert probe_similarities(probe.samples, [], CURRENT.layout).shape == (0,)


def test_layout_refuses_blocks_that_do_not_fit() -> None:
    base = CURRENT.layout
    for blocks, shift in ((3, 2), (0, 2), (2, 8)):
        with pytest.raises(ValueError):
            replace(base, match_blocks=blocks, max_shift_cells=shift)
