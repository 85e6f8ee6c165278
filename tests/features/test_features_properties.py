"""Property tests of the orientation-code extractor and template similarity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from palm_textures import palm_texture, roi_from

from palmid.detect.palm import PalmROI
from palmid.errors import ConfigError, TemplateError, TemplateVersionMismatch, ValidationFailed
from palmid.features.registry import DEFAULT_EXTRACTOR, extractor_names, get_extractor
from palmid.templates.compare import compare_templates
from palmid.templates.template import Template

EXTRACTOR = get_extractor(DEFAULT_EXTRACTOR)
SEEDS = st.integers(min_value=0, max_value=10_000)
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_default_extractor_is_registered() -> None:
    assert DEFAULT_EXTRACTOR in extractor_names()
    assert EXTRACTOR.extractor_id == DEFAULT_EXTRACTOR
    template = EXTRACTOR.extract(roi_from(palm_texture(1)))
    assert (template.extractor_id, template.version) == (EXTRACTOR.extractor_id, EXTRACTOR.version)
    assert template.n_samples == 1
    assert template.sample_bytes == EXTRACTOR.layout.sample_bytes


def test_unknown_extractor_is_refused_with_a_code() -> None:
    with pytest.raises(ConfigError) as caught:
        get_extractor("no-such-extractor")
    assert caught.value.code == "unknown_extractor"


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((64, 64), np.uint8), np.zeros((128, 128), np.float32), np.zeros((128, 128, 3), np.uint8)],
)
def test_malformed_roi_is_refused(pixels: np.ndarray) -> None:
    with pytest.raises(ValidationFailed) as caught:
        EXTRACTOR.extract(PalmROI(pixels=pixels, method="roi"))
    assert caught.value.code == "invalid_roi"


def test_extraction_is_deterministic() -> None:
    roi = roi_from(palm_texture(7))
    assert EXTRACTOR.extract(roi) == EXTRACTOR.extract(roi)


@FAST
@given(seed=SEEDS)
def test_self_similarity_is_maximal(seed: int) -> None:
    texture = palm_texture(seed)
    template = EXTRACTOR.extract(roi_from(texture))
    other = EXTRACTOR.extract(roi_from(palm_texture(seed + 1)))
    assert compare_templates(template, template) == pytest.approx(1.0)
    assert compare_templates(template, other) < compare_templates(template, template)


@FAST
@given(seed=SEEDS, dx=st.integers(-6, 6), dy=st.integers(-6, 6), angle=st.floats(-6, 6))
def test_similarity_is_symmetric_and_tolerates_small_moves(seed: int, dx: int, dy: int, angle: float) -> None:
    texture = palm_texture(seed)
    reference = EXTRACTOR.extract(roi_from(texture))
    moved = EXTRACTOR.extract(roi_from(texture, dx_px=dx, dy_px=dy, angle_deg=angle))
    stranger = EXTRACTOR.extract(roi_from(palm_texture(seed + 5000), dx_px=dx, dy_px=dy, angle_deg=angle))
    same = compare_templates(reference, moved)
    assert same == pytest.approx(compare_templates(moved, reference), abs=1e-6)
    assert 0.0 <= same <= 1.0
    assert same > compare_templates(reference, stranger) + 0.1


def test_different_version_or_extractor_is_refused() -> None:
    template = EXTRACTOR.extract(roi_from(palm_texture(3)))
    newer = Template(extractor_id=template.extractor_id, version=template.version + 1, samples=template.samples)
    renamed = Template(extractor_id="other-codes", version=template.version, samples=template.samples)
    for other in (newer, renamed):
        with pytest.raises(TemplateVersionMismatch) as caught:
            compare_templates(template, other)
        assert caught.value.code == "template_version_mismatch"
    with pytest.raises(TemplateVersionMismatch):
        compare_templates(newer, newer)  # a version this build does not know


@FAST
@given(seed=SEEDS, position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_corrupt_template_bytes_are_refused(seed: int, position: int, flip: int) -> None:
    data = bytearray(EXTRACTOR.extract(roi_from(palm_texture(seed))).to_bytes())
    data[position % len(data)] ^= flip
    with pytest.raises(TemplateError) as caught:
        Template.from_bytes(bytes(data))
    assert caught.value.code == "template_corrupt"
