"""The aligned code for 1:N re-ranking: layout, multi-sample majority, shift tolerance, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from palmid.errors import TemplateError, ValidationFailed
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.templates.coarse import (
    ALIGNED_CODE_BITS,
    ALIGNED_CODE_BYTES,
    ALIGNED_HEAD_BYTES,
    aligned_code,
    aligned_distances,
    aligned_probe_codes,
)
from palmid.templates.template import Template

_LAYOUT = get_extractor(DEFAULT_EXTRACTOR).layout
_ZERO = _LAYOUT.rotations_deg.index(0.0)


def _template(fine: list[np.ndarray], rng: np.random.Generator) -> Template:
    """A template whose samples have random coarse codes and the given fine code bits (layout.code_shape)."""
    samples = []
    for bits in fine:
        coarse = rng.integers(0, 256, _LAYOUT.coarse_bytes, dtype=np.uint8)
        samples.append(coarse.tobytes() + np.packbits(bits.astype(np.uint8)).tobytes())
    extractor = get_extractor(DEFAULT_EXTRACTOR)
    return Template(extractor_id=extractor.extractor_id, version=extractor.version, samples=tuple(samples))


def _random_fine(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2, _LAYOUT.code_shape, dtype=np.uint8).astype(bool)


def test_aligned_code_reads_every_other_inner_cell_of_the_zero_degree_code() -> None:
    rng = np.random.default_rng(1)
    fine = _random_fine(rng)
    code = aligned_code(_template([fine], rng))
    assert code.shape == (ALIGNED_CODE_BYTES,) and code.dtype == np.uint8
    cells = fine[_ZERO, 3:31:2, 3:31:2]
    assert cells.size == ALIGNED_CODE_BITS
    bits = np.unpackbits(code).reshape(2, ALIGNED_HEAD_BYTES * 8)
    half = ALIGNED_CODE_BITS // 2
    np.testing.assert_array_equal(bits[0, :half], cells[:, 0::2].reshape(-1))  # even columns first
    np.testing.assert_array_equal(bits[1, :half], cells[:, 1::2].reshape(-1))
    assert not bits[:, half:].any()  # zero padding


@pytest.mark.parametrize("n_samples", [2, 3, 4, 5])
def test_multi_sample_code_is_the_bitwise_majority(n_samples: int) -> None:
    rng = np.random.default_rng(n_samples)
    fines = [_random_fine(rng) for _ in range(n_samples)]
    template = _template(fines, rng)
    singles = np.stack(
        [np.unpackbits(aligned_code(Template(template.extractor_id, template.version, (s,)))) for s in template.samples]
    ).astype(int)
    votes = 2 * singles.sum(axis=0) - n_samples
    want = np.where(votes == 0, singles[0], votes > 0)
    np.testing.assert_array_equal(np.unpackbits(aligned_code(template)), want)


@pytest.mark.parametrize(("dy", "dx"), [(0, 0), (1, -2), (-2, 2), (2, 1)])
def test_shifted_probe_matches_exactly_at_its_shift(dy: int, dx: int) -> None:
    rng = np.random.default_rng(7)
    fine = _random_fine(rng)
    reference = aligned_code(_template([fine], rng))
    shifted = np.roll(fine, (dy, dx), axis=(1, 2))  # the same palm captured dy, dx cells off
    probe_codes = aligned_probe_codes(_template([shifted], rng))
    assert probe_codes.shape == (25, ALIGNED_CODE_BYTES)
    assert aligned_distances(probe_codes, reference[None])[0] == 0
    other = aligned_code(_template([_random_fine(rng)], rng))
    distances = aligned_distances(probe_codes, np.stack([reference, other]))
    assert distances[0] == 0 and distances[1] > ALIGNED_CODE_BITS // 3


def test_multi_sample_probe_gives_the_shifts_of_every_sample() -> None:
    rng = np.random.default_rng(3)
    template = _template([_random_fine(rng) for _ in range(2)], rng)
    assert aligned_probe_codes(template).shape == (50, ALIGNED_CODE_BYTES)


def test_bad_inputs_are_refused() -> None:
    rng = np.random.default_rng(5)
    template = _template([_random_fine(rng)], rng)
    probe = aligned_probe_codes(template)
    with pytest.raises(ValidationFailed):
        aligned_distances(probe[:, :100], np.zeros((3, ALIGNED_CODE_BYTES), np.uint8))
    with pytest.raises(ValidationFailed):
        aligned_distances(probe[:0], np.zeros((3, ALIGNED_CODE_BYTES), np.uint8))
    assert aligned_distances(probe, np.zeros((0, ALIGNED_CODE_BYTES), np.uint8)).shape == (0,)
    broken = Template(template.extractor_id, template.version, (template.samples[0][:-1],))
    with pytest.raises(TemplateError):
        aligned_code(broken)
