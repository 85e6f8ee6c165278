"""The scan code: what the 1:N index compares with EVERY enrolled palm, shift-tolerant at plain-Hamming cost.

A scan code is 64 cells of a template's 0-degree fine code, all 12 channels of each (768 bits, 96 bytes). The
cells lie on a lattice of every third cell (12 px on the 128 px ROI, one Gabor wavelength) at rows and columns 2,
5, ..., 29 of the 32-cell grid, symmetric about the ROI centre, and are the 64 lattice cells nearest the centre,
ordered by that distance (ties by row, then column). So the code is a disc around the palm's centre, leaving out
the corners where the ROI meets fingers and background, and any prefix of whole 64-bit words is a smaller centred
disc (a cheaper scan).

The reference side stores one code per template: the bitwise majority of its samples, ties -> the first sample's
bit. The probe side gives one code per searched shift of the probe's cells by -2..+2 cells in y and x: every shift
(25), or with ``dense=False`` the 13 shifts with an even ``dy + dx``, a quincunx that leaves no shift more than one
cell from a searched one. A palm's scan distance is the smallest Hamming distance over those codes.

Measured at a million palms (1000 cross-session Tongji searches among mosaic distractors), with the 13 quincunx
shifts on the whole code: every mate ranked within the best 7,000 by the scan distance alone.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateVersionMismatch
from palmid.features.layout import CodeLayout
from palmid.features.registry import layout_for
from palmid.templates.coarse import aligned_block, fine_rows, packed_majority, sample_array
from palmid.templates.template import Template

__all__ = [
    "SCAN_CELLS",
    "SCAN_CODE_BYTES",
    "SCAN_MAX_SHIFT_CELLS",
    "scan_cells",
    "scan_codes",
    "scan_probe_codes",
    "scan_shifts",
]

SCAN_CELLS = 64
SCAN_MAX_SHIFT_CELLS = 2
"""Probe shifts searched, in fine cells (4 px on the 128 px ROI), in y and x."""
_LATTICE_STEP = 3
_SUPPORTED_GRID = 32
_SUPPORTED_CHANNELS = 12
SCAN_CODE_BYTES = SCAN_CELLS * _SUPPORTED_CHANNELS // 8


def scan_shifts(*, dense: bool) -> tuple[tuple[int, int], ...]:
    """``(dy, dx)`` probe shifts in cells: all 25 of -2..+2, or (``dense=False``) the 13 with an even sum."""
    span = range(-SCAN_MAX_SHIFT_CELLS, SCAN_MAX_SHIFT_CELLS + 1)
    return tuple((dy, dx) for dy in span for dx in span if dense or (dy + dx) % 2 == 0)


@cache
def scan_cells(grid_cells: int = _SUPPORTED_GRID) -> tuple[tuple[int, int], ...]:
    """The ``SCAN_CELLS`` ``(row, column)`` cells of a scan code, nearest the grid centre first."""
    lattice = range(SCAN_MAX_SHIFT_CELLS, grid_cells - SCAN_MAX_SHIFT_CELLS, _LATTICE_STEP)
    centre = (grid_cells - 1) / 2
    cells = sorted(
        ((y, x) for y in lattice for x in lattice), key=lambda c: (np.hypot(c[0] - centre, c[1] - centre), c)
    )
    return tuple(cells[:SCAN_CELLS])


def _check(layout: CodeLayout) -> None:
    if layout.grid_cells != _SUPPORTED_GRID or layout.channels != _SUPPORTED_CHANNELS:
        raise TemplateVersionMismatch("this code layout has no scan code", code="template_version_mismatch")


@cache
def _bit_index(grid_cells: int, channels: int, dy: int, dx: int) -> NDArray[np.intp]:
    """Indices into a flattened ``(grid, grid, channels)`` bit map of the code's bits, cells shifted by (dy, dx)."""
    cells = np.asarray(scan_cells(grid_cells), dtype=np.intp)
    flat = ((cells[:, 0] + dy) * grid_cells + (cells[:, 1] + dx))[:, None] * channels + np.arange(channels)
    index: NDArray[np.intp] = flat.reshape(-1)
    index.flags.writeable = False
    return index


def scan_codes(blocks: NDArray[np.uint8], layout: CodeLayout) -> NDArray[np.uint8]:
    """``(n, SCAN_CODE_BYTES)`` reference scan codes of ``n`` templates from their samples' ``aligned_block``
    bytes ``(n, samples, block bytes)`` (all templates with the same number of samples)."""
    _check(layout)
    majority = packed_majority(fine_rows(blocks, layout)).reshape(len(blocks), -1)
    bits = np.unpackbits(majority, axis=1)
    return np.packbits(bits[:, _bit_index(layout.grid_cells, layout.channels, 0, 0)], axis=1)


def scan_probe_codes(template: Template, *, dense: bool = False) -> NDArray[np.uint8]:
    """``(shifts * samples, SCAN_CODE_BYTES)``: each sample's scan code at every searched shift
    (:func:`scan_shifts`)."""
    layout = layout_for(template.extractor_id, template.version)
    _check(layout)
    raw = sample_array(template, layout)[:, aligned_block(layout)]
    bits = np.unpackbits(raw, axis=1)
    index = np.stack(
        [_bit_index(layout.grid_cells, layout.channels, dy, dx) for dy, dx in scan_shifts(dense=dense)]
    )  # (shifts, bits)
    return np.packbits(bits[:, index].reshape(-1, index.shape[1]), axis=1)
