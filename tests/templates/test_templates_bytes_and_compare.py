"""Template byte format, multi-sample merging and batched similarity."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))
from palm_textures import palm_texture, roi_from

from palmid.errors import TemplateError, TemplateVersionMismatch, ValidationFailed
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.templates.compare import compare_templates, merge_templates, similarity_matrix
from palmid.templates.template import TEMPLATE_MAGIC, Template

EXTRACTOR = get_extractor(DEFAULT_EXTRACTOR)


@pytest.fixture(scope="module")
def templates() -> list[Template]:
    return [EXTRACTOR.extract(roi_from(palm_texture(seed), dx_px=seed % 3)) for seed in range(6)]


def test_bytes_round_trip(templates: list[Template]) -> None:
    merged = merge_templates(templates[:3])
    data = merged.to_bytes()
    assert data.startswith(TEMPLATE_MAGIC)
    assert Template.from_bytes(data) == merged
    assert Template.from_bytes(bytearray(data)) == merged


@pytest.mark.parametrize(
    "mangle",
    [
        lambda data: data[:-1],
        lambda data: data[:10],
        lambda data: b"",
        lambda data: b"XXXXXXXX" + data[8:],
        lambda data: data + b"\0",
    ],
)
def test_malformed_bytes_raise_template_corrupt(templates: list[Template], mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TemplateError) as caught:
        Template.from_bytes(mangle(templates[0].to_bytes()))
    assert caught.value.code == "template_corrupt"


def test_invalid_templates_cannot_be_built() -> None:
    with pytest.raises(TemplateError):
        Template(extractor_id="x", version=1, samples=())
    with pytest.raises(TemplateError):
        Template(extractor_id="x", version=1, samples=(b"ab", b"abc"))
    with pytest.raises(TemplateError):
        Template(extractor_id="", version=1, samples=(b"ab",))


def test_wrong_sample_size_is_corrupt(templates: list[Template]) -> None:
    broken = Template(extractor_id=templates[0].extractor_id, version=templates[0].version, samples=(b"abc",))
    with pytest.raises(TemplateError) as caught:
        compare_templates(broken, templates[0])
    assert caught.value.code == "template_corrupt"


def test_similarity_matrix_matches_pairwise_compare(templates: list[Template]) -> None:
    probes, gallery = templates[:2], [*templates[2:], merge_templates(templates[:2])]
    matrix = similarity_matrix(probes, gallery)
    assert matrix.shape == (2, len(gallery))
    for i, probe in enumerate(probes):
        for j, reference in enumerate(gallery):
            assert matrix[i, j] == pytest.approx(compare_templates(probe, reference), abs=1e-6)
    assert similarity_matrix([], gallery).shape == (0, len(gallery))


def test_multi_sample_similarity_is_best_over_samples(templates: list[Template]) -> None:
    enrolled = merge_templates(templates[1:4])
    assert enrolled.n_samples == 3
    singles = [compare_templates(templates[0], single) for single in templates[1:4]]
    assert compare_templates(templates[0], enrolled) == pytest.approx(max(singles), abs=1e-6)
    assert compare_templates(templates[2], enrolled) == pytest.approx(1.0)


def test_merge_refuses_empty_and_mixed_versions(templates: list[Template]) -> None:
    with pytest.raises(ValidationFailed):
        merge_templates([])
    other = Template(extractor_id=templates[0].extractor_id, version=99, samples=templates[0].samples)
    with pytest.raises(TemplateVersionMismatch):
        merge_templates([templates[0], other])
