"""The scan code of the 1:N index: its cells, the multi-sample majority, shift tolerance, and real-palm behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from palmid.errors import TemplateError, TemplateVersionMismatch
from palmid.features.layout import CodeLayout
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.index.engine import EngineMatcher
from palmid.templates.coarse import aligned_block
from palmid.templates.scan import (
    SCAN_CELLS,
    SCAN_CODE_BYTES,
    scan_cells,
    scan_codes,
    scan_probe_codes,
    scan_shifts,
)
from palmid.templates.template import Template

_EXTRACTOR = get_extractor(DEFAULT_EXTRACTOR)
_LAYOUT = _EXTRACTOR.layout
_ZERO = _LAYOUT.rotations_deg.index(0.0)


def _template(fine: list[NDArray[np.bool_]], rng: np.random.Generator) -> Template:
    samples = []
    for bits in fine:
        coarse = rng.integers(0, 256, _LAYOUT.coarse_bytes, dtype=np.uint8)
        samples.append(coarse.tobytes() + np.packbits(bits.astype(np.uint8)).tobytes())
    return Template(extractor_id=_EXTRACTOR.extractor_id, version=_EXTRACTOR.version, samples=tuple(samples))


def _random_fine(rng: np.random.Generator) -> NDArray[np.bool_]:
    return rng.integers(0, 2, _LAYOUT.code_shape, dtype=np.uint8).astype(bool)


def _reference(template: Template) -> NDArray[np.uint8]:
    blocks = np.stack([np.frombuffer(s, dtype=np.uint8)[aligned_block(_LAYOUT)] for s in template.samples])
    return scan_codes(blocks[None], _LAYOUT)[0]


def _min_distance(probe_codes: NDArray[np.uint8], reference: NDArray[np.uint8]) -> int:
    return int(np.bitwise_count(probe_codes ^ reference[None]).sum(axis=1).min())


def test_cells_are_a_centred_disc_on_the_lattice_nearest_first() -> None:
    cells = scan_cells()
    assert len(cells) == SCAN_CELLS == len(set(cells))
    assert SCAN_CELLS * _LAYOUT.channels == SCAN_CODE_BYTES * 8
    assert all(y % 3 == 2 and x % 3 == 2 for y, x in cells)  # rows/columns 2, 5, ..., 29
    radii = [np.hypot(y - 15.5, x - 15.5) for y, x in cells]
    assert radii == sorted(radii)  # any prefix is a smaller centred disc
    inner = set(cells[:60])  # the complete rings are symmetric about the ROI centre (the last ring is cut)
    assert {(31 - y, 31 - x) for y, x in inner} == inner == {(x, y) for y, x in inner}
    # every cell at every searched shift stays on the grid
    assert all(0 <= y + dy < 32 and 0 <= x + dx < 32 for y, x in cells for dy, dx in scan_shifts(dense=True))


def test_shift_sets() -> None:
    dense, sparse = scan_shifts(dense=True), scan_shifts(dense=False)
    assert len(dense) == 25 and len(sparse) == 13 and set(sparse) < set(dense)
    assert (0, 0) in sparse
    # no shift of the dense set is more than one cell (in y or x) from the sparse set
    assert all(min(abs(dy - sy) + abs(dx - sx) for sy, sx in sparse) <= 1 for dy, dx in dense)


def test_reference_code_reads_the_zero_degree_cells() -> None:
    rng = np.random.default_rng(1)
    fine = _random_fine(rng)
    code = _reference(_template([fine], rng))
    assert code.shape == (SCAN_CODE_BYTES,) and code.dtype == np.uint8
    want = np.concatenate([fine[_ZERO, y, x] for y, x in scan_cells()])
    np.testing.assert_array_equal(np.unpackbits(code).astype(bool), want)


@pytest.mark.parametrize("n_samples", [2, 3, 4])
def test_multi_sample_code_is_the_bitwise_majority(n_samples: int) -> None:
    rng = np.random.default_rng(n_samples)
    template = _template([_random_fine(rng) for _ in range(n_samples)], rng)
    singles = np.stack(
        [np.unpackbits(_reference(Template(template.extractor_id, template.version, (s,)))) for s in template.samples]
    ).astype(int)
    votes = 2 * singles.sum(axis=0) - n_samples
    np.testing.assert_array_equal(np.unpackbits(_reference(template)), np.where(votes == 0, singles[0], votes > 0))


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize(("dy", "dx"), [(0, 0), (1, 1), (-2, 2), (2, 0), (1, 0), (-1, 2)])
def test_a_shifted_capture_matches_exactly_when_its_shift_is_searched(dense: bool, dy: int, dx: int) -> None:
    rng = np.random.default_rng(7)
    fine = _random_fine(rng)
    reference = _reference(_template([fine], rng))
    probe = _template([np.roll(fine, (dy, dx), axis=(1, 2))], rng)  # the same palm captured dy, dx cells off
    codes = scan_probe_codes(probe, dense=dense)
    assert codes.shape == (25 if dense else 13, SCAN_CODE_BYTES)
    searched = (dy, dx) in scan_shifts(dense=dense)
    assert (_min_distance(codes, reference) == 0) == searched
    other = _reference(_template([_random_fine(rng)], rng))
    assert _min_distance(codes, other) > SCAN_CODE_BYTES * 8 // 3


def test_self_distance_is_zero_and_multi_sample_probes_give_every_sample() -> None:
    rng = np.random.default_rng(3)
    template = _template([_random_fine(rng) for _ in range(2)], rng)
    codes = scan_probe_codes(template)
    assert codes.shape == (26, SCAN_CODE_BYTES)
    first = Template(template.extractor_id, template.version, template.samples[:1])
    assert _min_distance(codes, _reference(first)) == 0


def test_other_layouts_and_broken_templates_are_refused() -> None:
    rng = np.random.default_rng(5)
    template = _template([_random_fine(rng)], rng)
    broken = Template(template.extractor_id, template.version, (template.samples[0][:-1],))
    with pytest.raises(TemplateError):
        scan_probe_codes(broken)
    with pytest.raises(TemplateError):
        EngineMatcher().index_codes([broken])
    small = CodeLayout(
        rotations_deg=(0.0,), grid_cells=16, channels=12, coarse_bytes=256, rotation_pairs=((0, 0),), max_shift_cells=2
    )
    with pytest.raises(TemplateVersionMismatch):
        scan_codes(np.zeros((1, 1, 16 * 16 * 12 // 8), dtype=np.uint8), small)
