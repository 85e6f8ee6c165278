"""The index's engine adapter: fast re-ranking equals the engine's comparison; mosaic distractors are sound."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from palmid.detect.palm import PalmROI
from palmid.errors import TemplateVersionMismatch
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.index.engine import CODE_FORMAT_VERSION, SCAN_BYTES, EngineMatcher
from palmid.index.exact import ExactIndex
from palmid.index.fast import FastIndex
from palmid.index.gallery import MosaicDistractors
from palmid.index.profiles import SEARCH_PROFILES, SearchProfile
from palmid.templates.coarse import aligned_code, aligned_probe_codes
from palmid.templates.compare import merge_templates, similarity_matrix
from palmid.templates.scan import scan_probe_codes
from palmid.templates.template import Template


@pytest.fixture(scope="module")
def palms(make_palm_image: Callable[..., NDArray[np.uint8]]) -> list[list[Template]]:
    """8 synthetic palms x 4 captures."""
    extractor = get_extractor(DEFAULT_EXTRACTOR)
    return [
        [extractor.extract(PalmROI(pixels=make_palm_image(p, variant=v), method="roi")) for v in range(4)]
        for p in range(8)
    ]


def test_compare_many_equals_engine_similarity(palms: list[list[Template]]) -> None:
    matcher = EngineMatcher()
    references = [merge_templates(captures[:2]) for captures in palms] + [captures[3] for captures in palms]
    for probe in (palms[0][2], palms[5][3], merge_templates(palms[1][2:])):
        want = similarity_matrix([probe], references)[0]
        got = matcher.compare_many(probe, references)
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert matcher.compare(probe, references[0]) == pytest.approx(float(want[0]), abs=1e-6)
    assert matcher.compare_many(palms[0][0], []).shape == (0,)


def test_compare_many_refuses_other_versions(palms: list[list[Template]]) -> None:
    template = palms[0][0]
    other = Template(extractor_id=template.extractor_id, version=template.version + 1, samples=template.samples)
    with pytest.raises(TemplateVersionMismatch):
        EngineMatcher().compare_many(template, [other])


def test_index_code_is_the_scan_code_then_the_aligned_code(palms: list[list[Template]]) -> None:
    matcher = EngineMatcher()
    a = palms[0][0]
    code = matcher.index_code(a)
    assert code.shape == (matcher.code_bytes,) == (SCAN_BYTES + matcher.aligned_bytes,)
    assert matcher.scan_bytes == SCAN_BYTES and SCAN_BYTES % 8 == 0
    assert CODE_FORMAT_VERSION == 2  # 1 was the coarse code + aligned code: stored codes of 1 are recomputed
    # a single-sample template's scan code is its own zero-shift probe scan code
    np.testing.assert_array_equal(code[:SCAN_BYTES], scan_probe_codes(a)[len(scan_probe_codes(a)) // 2])
    np.testing.assert_array_equal(code[SCAN_BYTES:], aligned_code(a))
    # the vectorised codes equal the one-by-one codes, for single- and multi-sample templates (odd and even counts)
    templates = [a, palms[1][0], merge_templates(palms[2][:2]), merge_templates(palms[3][:3]), palms[4][1]]
    templates += [merge_templates(palms[5]), merge_templates(palms[6][:3]), merge_templates([*palms[7], palms[0][1]])]
    batch = matcher.index_codes(templates)
    for row, template in zip(batch, templates, strict=True):
        np.testing.assert_array_equal(row, matcher.index_code(template))
        np.testing.assert_array_equal(row[SCAN_BYTES:], aligned_code(template))


def test_probe_codes_of_the_engine(palms: list[list[Template]]) -> None:
    matcher = EngineMatcher()
    probe = merge_templates(palms[0][:2])
    assert matcher.scan_probe_codes(probe).shape == (13 * 2, SCAN_BYTES)
    assert matcher.scan_probe_codes(probe, dense=True).shape == (25 * 2, SCAN_BYTES)
    codes = matcher.aligned_probe_codes(probe)
    unrotated, rotated = codes.unrotated, codes.rotated
    assert rotated.shape == (3 * unrotated.shape[0], matcher.aligned_bytes)
    np.testing.assert_array_equal(rotated[: unrotated.shape[0]], unrotated)  # the 0-degree codes first
    np.testing.assert_array_equal(unrotated, aligned_probe_codes(probe))
    np.testing.assert_array_equal(rotated, aligned_probe_codes(probe, rotated=True))


@pytest.mark.parametrize("profile", sorted(SEARCH_PROFILES))
def test_fast_index_finds_synthetic_palms_like_exact(palms: list[list[Template]], profile: str) -> None:
    matcher = EngineMatcher()
    chosen = SEARCH_PROFILES[profile]
    fast: FastIndex[Template] = FastIndex(
        matcher=matcher, profile=SearchProfile(scan_words=chosen.scan_words, rerank_k=4, prefilter_k=8)
    )
    exact: ExactIndex[Template] = ExactIndex(matcher=matcher)
    gallery = [(f"p{p}", merge_templates(captures[:2])) for p, captures in enumerate(palms)]
    fast.add_many(gallery)
    exact.add_many(gallery)
    for p, captures in enumerate(palms):
        hit = fast.search(captures[3], k=1)[0]
        assert hit == exact.search(captures[3], k=1)[0]
        assert hit.subject_id == f"p{p}"


def test_mosaic_distractors_are_deterministic_and_well_formed(palms: list[list[Template]]) -> None:
    extractor = get_extractor(DEFAULT_EXTRACTOR)
    pool = [np.stack([np.frombuffer(t.samples[0], dtype=np.uint8) for t in captures]) for captures in palms]
    maker = MosaicDistractors(
        pool,
        layout=extractor.layout,
        extractor_id=extractor.extractor_id,
        version=extractor.version,
        samples_per_template=3,
        seed=7,
    )
    first = maker.templates([0, 1, 2, 999_999])
    again = maker.templates([999_999, 1])
    assert first[3] == again[0] and first[1] == again[1]
    assert first[0] != first[1]
    for template in first:
        assert template.n_samples == 3
        assert len(template.samples[0]) == extractor.layout.sample_bytes
    # every coarse cell and every fine unit of a distractor sample is copied from some pool sample at that place
    sample = np.frombuffer(first[0].samples[0], dtype=np.uint8)
    coarse = sample[:256]
    pool_coarse = np.concatenate(pool)[:, :256]
    assert all((pool_coarse[:, cell] == coarse[cell]).any() for cell in range(256))
    # a distractor is close to itself across its samples (genuine-like), far from other distractors
    matcher = EngineMatcher()
    own = matcher.compare(
        Template(first[0].extractor_id, first[0].version, first[0].samples[:1]),
        Template(first[0].extractor_id, first[0].version, first[0].samples[1:2]),
    )
    other = matcher.compare(first[0], first[1])
    assert own > other
