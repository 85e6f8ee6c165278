"""The aligned code for 1:N re-ranking, compared by plain Hamming distance, and the fine-code helpers it shares with
the scan code (:mod:`palmid.templates.scan`).

Every sample of the current template versions starts with a 256-byte **coarse code** (``COARSE_CODE_BYTES``: signs
of box-pooled low-frequency Gabor responses on an 8x8 grid). It is not alignment tolerant, and nothing reads it any
more: the 1:N index scans the scan code instead. Dropping it from the samples would change the template format, so
it waits for a new extractor version.

- the **aligned code**, 2352 bits (14 x 14 cells x 12 channels, 296 bytes): the 0-degree fine code of the ROI
  subsampled at every other cell of the inner grid (cells 3, 5, ..., 29 of 32 in y and x); bytes 0-147 hold the
  even columns of those cells (a half-resolution code on its own, for a cheaper first re-ranking), bytes 148-295
  the odd columns (each half is 1176 bits and one zero byte). The probe side
  gives one such code per relative shift of -2..+2 fine cells in y and x (25 codes, read from the probe's full fine
  grid, so every shift compares the same number of bits), and the distance is the smallest Hamming distance over
  them: a shift-tolerant comparison at plain-Hamming cost, for re-ranking the scan's shortlist.

For a multi-sample template each code is the bitwise majority of its samples' codes (ties -> the first sample's
bit); a multi-sample probe gives the shifted codes of every sample.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateError, TemplateVersionMismatch, ValidationFailed
from palmid.features.layout import CodeLayout
from palmid.features.registry import layout_for
from palmid.templates.matching import hamming_distances
from palmid.templates.template import Template

__all__ = [
    "ALIGNED_CODE_BITS",
    "ALIGNED_CODE_BYTES",
    "ALIGNED_HEAD_BYTES",
    "ALIGNED_MAX_SHIFT_CELLS",
    "COARSE_CODE_BITS",
    "COARSE_CODE_BYTES",
    "aligned_block",
    "aligned_code",
    "aligned_codes",
    "aligned_distances",
    "aligned_probe_codes",
    "fine_rows",
    "packed_majority",
    "rotation_blocks",
    "sample_array",
]

COARSE_CODE_BYTES = 256
COARSE_CODE_BITS = COARSE_CODE_BYTES * 8
ALIGNED_MAX_SHIFT_CELLS = 2
"""Probe shifts searched by the aligned code, in fine cells (4 px on the 128 px ROI), in y and x."""
_ALIGNED_FIRST_CELL = ALIGNED_MAX_SHIFT_CELLS + 1
_ALIGNED_STEP = 2
_ALIGNED_CELLS = 14
_ALIGNED_CHANNELS = 12
ALIGNED_CODE_BITS = _ALIGNED_CELLS * _ALIGNED_CELLS * _ALIGNED_CHANNELS
ALIGNED_HEAD_BYTES = 148
"""The first part of an aligned code: the even columns of its 14 x 14 cells (1176 bits + 8 zero bits)."""
ALIGNED_CODE_BYTES = 2 * ALIGNED_HEAD_BYTES
"""2352 bits: even columns (``ALIGNED_HEAD_BYTES``), then odd columns, each padded with one zero byte."""


# ------------------------------------------------------------------------------------------------ aligned code
def _aligned_geometry(layout: CodeLayout) -> tuple[int, int, int]:
    """``(index of the 0-degree rotation, row bytes, first fine byte of that rotation)`` for a supported layout."""
    if 0.0 not in layout.rotations_deg or layout.channels != _ALIGNED_CHANNELS:
        raise TemplateVersionMismatch("this code layout has no aligned code", code="template_version_mismatch")
    last = _ALIGNED_FIRST_CELL + _ALIGNED_STEP * (_ALIGNED_CELLS - 1) + ALIGNED_MAX_SHIFT_CELLS
    row_bits = layout.grid_cells * layout.channels
    if last >= layout.grid_cells or row_bits % 8:
        raise TemplateVersionMismatch("this code layout has no aligned code", code="template_version_mismatch")
    rotation = layout.rotations_deg.index(0.0)
    row_bytes = row_bits // 8
    return rotation, row_bytes, layout.coarse_bytes + rotation * layout.grid_cells * row_bytes


def aligned_block(layout: CodeLayout) -> slice:
    """Bytes of a sample blob that hold the 0-degree fine code (all an aligned code is made from)."""
    _, row_bytes, start = _aligned_geometry(layout)
    return slice(start, start + layout.grid_cells * row_bytes)


def rotation_blocks(layout: CodeLayout) -> tuple[slice, ...]:
    """Bytes of a sample blob that hold the fine code of each stored rotation, the 0-degree one first."""
    zero, row_bytes, _ = _aligned_geometry(layout)
    size = layout.grid_cells * row_bytes
    order = [zero] + [r for r in range(len(layout.rotations_deg)) if r != zero]
    return tuple(slice(layout.coarse_bytes + r * size, layout.coarse_bytes + (r + 1) * size) for r in order)


def fine_rows(blocks: NDArray[np.uint8], layout: CodeLayout) -> NDArray[np.uint8]:
    """``(..., grid rows, row bytes)`` packed fine rows of one rotation's bytes (``aligned_block``,
    ``rotation_blocks``) ``(..., block bytes)``."""
    _, row_bytes, _ = _aligned_geometry(layout)
    if blocks.shape[-1] != layout.grid_cells * row_bytes:
        raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
    return blocks.reshape(*blocks.shape[:-1], layout.grid_cells, row_bytes)


def packed_majority(packed: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Bitwise majority over axis 1 of packed bytes ``(n, samples, ...)``; ties -> the first sample's bit."""
    count = packed.shape[1]
    if count <= 2:
        return packed[:, 0]
    if count == 3:
        a, b, c = packed[:, 0], packed[:, 1], packed[:, 2]
        majority: NDArray[np.uint8] = (a & b) | (a & c) | (b & c)
        return majority
    bits = np.unpackbits(packed, axis=-1)
    votes = 2 * bits.sum(axis=1, dtype=np.int32) - count
    return np.packbits(np.where(votes == 0, bits[:, 0], votes > 0).astype(np.uint8), axis=-1)


def _pad(cells: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Pack ``(n, 14, 14, channels)`` 0/1 cell bits into ``(n, ALIGNED_CODE_BYTES)``: even columns, then odd ones."""
    out = np.zeros((len(cells), ALIGNED_CODE_BYTES), dtype=np.uint8)
    half_bytes = ALIGNED_CODE_BITS // 16
    out[:, :half_bytes] = np.packbits(cells[:, :, 0::2].reshape(len(cells), -1), axis=1)
    out[:, ALIGNED_HEAD_BYTES : ALIGNED_HEAD_BYTES + half_bytes] = np.packbits(
        cells[:, :, 1::2].reshape(len(cells), -1), axis=1
    )
    return out


def _cells(offset: int) -> slice:
    start = _ALIGNED_FIRST_CELL + offset
    return slice(start, start + _ALIGNED_STEP * _ALIGNED_CELLS, _ALIGNED_STEP)


def aligned_codes(blocks: NDArray[np.uint8], layout: CodeLayout) -> NDArray[np.uint8]:
    """``(n, ALIGNED_CODE_BYTES)`` aligned codes of ``n`` templates from their samples' ``aligned_block`` bytes
    ``(n, samples, block bytes)`` (all templates with the same number of samples)."""
    if blocks.ndim != 3 or blocks.shape[1] < 1:
        raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
    rows = packed_majority(fine_rows(blocks, layout)[:, :, _cells(0)])  # (n, 14 rows, row bytes), on packed bytes
    bits = np.unpackbits(rows, axis=-1).reshape(len(blocks), _ALIGNED_CELLS, layout.grid_cells, layout.channels)
    return _pad(bits[:, :, _cells(0)])


def aligned_code(template: Template) -> NDArray[np.uint8]:
    """The template's ``(ALIGNED_CODE_BYTES,)`` aligned code (reference side)."""
    layout = layout_for(template.extractor_id, template.version)
    code: NDArray[np.uint8] = aligned_codes(sample_array(template, layout)[None, :, aligned_block(layout)], layout)[0]
    return code


def aligned_probe_codes(template: Template, *, rotated: bool = False) -> NDArray[np.uint8]:
    """``(25 * samples, ALIGNED_CODE_BYTES)``: the probe's aligned code at every shift of -2..+2 cells in y and x,
    from each sample's 0-degree fine code; with ``rotated`` also from its other stored rotations (``(25 * samples *
    rotations, ...)``, the 0-degree codes first), so that the distance also searches the relative rotations the full
    comparison searches (the reference side is always 0 degrees)."""
    layout = layout_for(template.extractor_id, template.version)
    raw = sample_array(template, layout)
    blocks = rotation_blocks(layout) if rotated else (aligned_block(layout),)
    span = range(-ALIGNED_MAX_SHIFT_CELLS, ALIGNED_MAX_SHIFT_CELLS + 1)
    shifted: list[NDArray[np.uint8]] = []
    for block in blocks:
        bits = np.unpackbits(fine_rows(raw[:, block], layout), axis=-1).reshape(
            len(raw), layout.grid_cells, layout.grid_cells, layout.channels
        )
        shifted.extend(bits[:, _cells(dy), _cells(dx)] for dy in span for dx in span)
    return _pad(np.concatenate(shifted))


def aligned_distances(probe_codes: NDArray[np.uint8], codes: NDArray[np.uint8]) -> NDArray[np.int32]:
    """``(N,)`` smallest Hamming distance of each row of ``codes`` over the probe's shifted codes."""
    if (
        probe_codes.ndim != 2
        or codes.ndim != 2
        or probe_codes.shape[1] != ALIGNED_CODE_BYTES
        or codes.shape[1] != ALIGNED_CODE_BYTES
        or probe_codes.dtype != np.uint8
        or codes.dtype != np.uint8
        or not len(probe_codes)
    ):
        raise ValidationFailed("aligned codes must be uint8 arrays of 296 bytes per row", code="invalid_request")
    best: NDArray[np.int32] = (
        hamming_distances(probe_codes, codes).min(axis=0) if len(codes) else np.zeros(0, dtype=np.int32)
    )
    return best


def sample_array(template: Template, layout: CodeLayout) -> NDArray[np.uint8]:
    """``(samples, sample bytes)`` of a template whose samples all have the layout's size."""
    if any(len(sample) != layout.sample_bytes for sample in template.samples):
        raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
    return np.frombuffer(b"".join(template.samples), dtype=np.uint8).reshape(template.n_samples, -1)
