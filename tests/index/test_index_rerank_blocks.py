"""The 1:N re-ranker (palmid.index.rerank) equals the engine's comparison for block (v2) and global (v1) matching."""

from __future__ import annotations

import numpy as np
import pytest

from palmid.errors import TemplateError, TemplateVersionMismatch
from palmid.features.layout import CodeLayout
from palmid.features.registry import layout_for
from palmid.index import rerank
from palmid.index.engine import EngineMatcher
from palmid.index.rerank import prepare_probe, probe_similarities
from palmid.templates import matching
from palmid.templates.compare import similarity_matrix
from palmid.templates.template import Template

EXTRACTOR = "gabor-bocv"


def _random_sample(rng: np.random.Generator, layout: CodeLayout) -> bytes:
    return rng.integers(0, 256, layout.sample_bytes, dtype=np.uint8).tobytes()


def _related_sample(sample: bytes, rng: np.random.Generator, layout: CodeLayout) -> bytes:
    """The same code, moved (each quarter of the map by its own shift when blocks match on their own), with some
    bits flipped."""
    raw = np.frombuffer(sample, dtype=np.uint8)
    bits = np.unpackbits(raw[layout.coarse_bytes :]).reshape(layout.code_shape).copy()
    half = layout.grid_cells // 2
    reach = layout.max_shift_cells
    moved = bits.copy()
    shift = tuple(int(s) for s in rng.integers(-reach, reach + 1, 2))
    for rows in (slice(0, half), slice(half, None)):
        for cols in (slice(0, half), slice(half, None)):
            if layout.match_blocks > 1:
                shift = tuple(int(s) for s in rng.integers(-reach, reach + 1, 2))
            moved[:, rows, cols] = np.roll(bits, shift, axis=(1, 2))[:, rows, cols]
    bits = moved ^ (rng.random(bits.shape) < 0.15).astype(np.uint8)
    return raw[: layout.coarse_bytes].tobytes() + np.packbits(bits.reshape(-1)).tobytes()


def _templates(version: int, seed: int) -> tuple[list[Template], list[Template]]:
    """Single- and multi-sample probes, and references of mixed sample counts (related and unrelated)."""
    layout = layout_for(EXTRACTOR, version)
    rng = np.random.default_rng(seed)
    base = [_random_sample(rng, layout) for _ in range(3)]
    probes = [
        Template(extractor_id=EXTRACTOR, version=version, samples=(base[0],)),
        Template(extractor_id=EXTRACTOR, version=version, samples=(base[1], _related_sample(base[0], rng, layout))),
    ]
    references = []
    for count in (1, 3, 2, 1, 3):
        samples = [_related_sample(base[int(rng.integers(0, 2))], rng, layout) for _ in range(count - 1)]
        samples.append(_random_sample(rng, layout))
        rng.shuffle(samples)
        references.append(Template(extractor_id=EXTRACTOR, version=version, samples=tuple(samples)))
    references.append(Template(extractor_id=EXTRACTOR, version=version, samples=(base[2],)))
    return probes, references


@pytest.mark.parametrize("version", [2, 1])
def test_compare_many_equals_the_similarity_matrix(version: int) -> None:
    probes, references = _templates(version, seed=version)
    matcher = EngineMatcher()
    for probe in probes:
        want = similarity_matrix([probe], references)[0].astype(np.float64)
        got = matcher.compare_many(probe, references)
        assert got.shape == (len(references),) and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=0.0, atol=1e-6)
        assert got.max() > 0.75  # related references score high (the best shift per block is found)
        assert got.min() < 0.6  # unrelated ones do not
        # one reference at a time, and in another order, gives the same values
        singles = [matcher.compare_many(probe, [reference])[0] for reference in references]
        np.testing.assert_allclose(singles, want, rtol=0.0, atol=1e-6)
        order = np.arange(len(references))[::-1]
        np.testing.assert_allclose(matcher.compare_many(probe, [references[i] for i in order]), want[order], atol=1e-6)


def test_compare_many_of_a_template_with_itself_is_one() -> None:
    probes, references = _templates(2, seed=7)
    matcher = EngineMatcher()
    for template in (*probes, *references):
        np.testing.assert_allclose(matcher.compare_many(template, [template]), [1.0], atol=1e-6)


def test_empty_references_give_no_scores() -> None:
    probes, _ = _templates(2, seed=3)
    assert EngineMatcher().compare_many(probes[0], []).shape == (0,)
    prepared = prepare_probe(probes[0].samples, layout_for(EXTRACTOR, 2))
    assert probe_similarities(prepared, []).shape == (0,)


def test_templates_of_another_version_are_refused() -> None:
    probes, references = _templates(2, seed=4)
    _, older = _templates(1, seed=4)
    matcher = EngineMatcher()
    with pytest.raises(TemplateVersionMismatch) as caught:
        matcher.compare_many(probes[0], [*references[:2], older[0]])
    assert caught.value.code == "template_version_mismatch"
    unknown = Template(extractor_id=EXTRACTOR, version=99, samples=probes[0].samples)
    with pytest.raises(TemplateVersionMismatch):
        matcher.compare_many(unknown, [unknown])


def test_malformed_references_are_refused() -> None:
    layout = layout_for(EXTRACTOR, 2)
    probes, references = _templates(2, seed=5)
    prepared = prepare_probe(probes[0].samples, layout)
    with pytest.raises(TemplateError) as caught:
        probe_similarities(prepared, [references[0].samples, (references[0].samples[0][:-1],)])
    assert caught.value.code == "template_corrupt"
    with pytest.raises(TemplateError):
        probe_similarities(prepared, [references[0].samples, ()])
    with pytest.raises(TemplateError):
        prepare_probe([], layout)


def test_many_references_are_scored_in_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    probes, references = _templates(2, seed=6)
    want = similarity_matrix([probes[1]], references)[0]
    monkeypatch.setattr(rerank, "_REFERENCE_CHUNK", 4)  # rounds split multi-sample references
    np.testing.assert_allclose(EngineMatcher().compare_many(probes[1], references), want, rtol=0.0, atol=1e-6)


@pytest.mark.parametrize(
    ("grid", "channels", "rotations", "blocks", "reach"),
    [
        (12, 3, 2, 2, 2),  # grid rows of 36 bits: rows start inside bytes
        (10, 3, 2, 1, 2),  # rotations of 300 bits: the second rotation starts inside a byte
        (12, 4, 3, 3, 1),  # 3 x 3 blocks
        (8, 8, 1, 2, 0),  # no shift at all
    ],
)
def test_other_layouts_equal_the_engine_matching(
    grid: int, channels: int, rotations: int, blocks: int, reach: int
) -> None:
    pairs = tuple((a, b) for a in range(rotations) for b in range(rotations) if abs(a - b) <= 1)
    layout = CodeLayout(
        rotations_deg=tuple(float(4 * i) for i in range(rotations)),
        grid_cells=grid,
        channels=channels,
        coarse_bytes=5,
        rotation_pairs=pairs,
        max_shift_cells=reach,
        match_blocks=blocks,
    )
    rng = np.random.default_rng(grid * channels + blocks)
    base = [_random_sample(rng, layout) for _ in range(2)]
    references = [
        (_related_sample(base[0], rng, layout),),
        (_random_sample(rng, layout), _related_sample(base[1], rng, layout)),
        (_random_sample(rng, layout),),
        (base[1], _random_sample(rng, layout), _related_sample(base[0], rng, layout)),
    ]
    for probe in ([base[0]], [base[1], _related_sample(base[0], rng, layout)]):
        want = matching.probe_similarities(probe, references, layout)
        got = probe_similarities(prepare_probe(probe, layout), references)
        np.testing.assert_allclose(got, want, rtol=0.0, atol=1e-6)
