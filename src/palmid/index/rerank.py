"""The engine's full comparison of ONE probe against many references, arranged for speed.

:func:`palmid.templates.compare.similarity_matrix` slices and packs both code maps for every alignment (rotation
pair, block and shift). For 1:N re-ranking the probe is fixed, so each alignment is turned once
(:func:`prepare_probe`) into a packed probe map laid over a fixed *region* of the reference's code: the block's
cells widened by the reach of the shifts (2x2 blocks on a 32-cell grid with shifts of +-2 cells: 17 x 17 cells
instead of 32 x 32), cut at byte boundaries. A map holds the probe's bits on the alignment's window (the cell pairs
whose midpoint lies in the block, as the engine cuts them) and zeros elsewhere, so one Hamming distance between it
and the reference's region (faiss, hardware popcount) counts the window's disagreeing bits plus the reference's set
bits outside the window. Those are removed with the distances of the reference to the window's complement mask
``M`` and to an all-zero code (``|R & M| = (|R| + |M| - d(R, M)) / 2``, on the bytes where some mask is set),
shared by all maps with that window, so all alignments of one block and reference rotation are a single all-pairs
Hamming call. The agreeing fractions then go through the engine's own float32 arithmetic (best shift per block, sum
over blocks, best rotation pair, times ``1 / blocks``, best sample pair): the result equals ``similarity_matrix``
row 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from palmid.errors import TemplateError
from palmid.features.layout import CodeLayout
from palmid.templates.matching import block_window, code_bits, hamming_distances

__all__ = ["ProbeAlignments", "prepare_probe", "probe_similarities"]

_REFERENCE_CHUNK = 96
"""Reference samples per round of Hamming calls (their region codes stay in the core's L1/L2 caches)."""


@dataclass(frozen=True)
class _Region:
    """Where one block's region of one rotation lies in a sample blob: per region row, ``row_bytes`` bytes from a
    byte boundary with the region's cells from bit ``lead`` on. Bits that are no cell of the region are zero in the
    probe maps and set in the complement masks."""

    leads: tuple[int, ...]
    row_bytes: int
    byte_index: NDArray[np.intp]
    rectangle: tuple[int, int, int, int, int] | None
    """``(rotation, first row, end row, first byte, end byte)`` of the rows' bytes in the ``(rotations, grid, row
    bytes)`` view of the fine code, when grid rows are whole bytes (then the region is a plain slice)."""


@dataclass(frozen=True)
class _Block:
    """What the layout fixes about one block (the same for every probe)."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    """The block's region: the reference cells that some shift compares with the block."""
    windows: NDArray[np.bool_]
    """``(span, span, region rows, region cols * channels)``: the reference bits shift ``(dy, dx)`` compares."""
    regions: tuple[_Region, ...]
    """Per reference rotation (``_Plan.rotations_b``)."""
    bands: tuple[NDArray[np.intp], ...]
    """Per reference rotation: the region bytes where some complement mask is set (the masks are zero elsewhere,
    so they are compared on these bytes only)."""
    masks: tuple[NDArray[np.uint8], ...]
    """Per reference rotation ``(windows + 1, band bytes)``: each window's packed complement mask, then the
    all-zero code."""


@dataclass(frozen=True)
class _Plan:
    """The layout's blocks, shifts and rotation pairs arranged for :func:`probe_similarities`."""

    rotations_b: tuple[int, ...]
    pair_slices: tuple[tuple[int, int], ...]
    """Per reference rotation: its rotation pairs' range in the pair order (the pairs sorted by rotation b)."""
    rotations_a: tuple[NDArray[np.intp], ...]
    """Per reference rotation: the probe rotation of each of its pairs."""
    rotation_of_pair: NDArray[np.intp]
    blocks: tuple[_Block, ...]
    window_of_shift: NDArray[np.intp]
    """``(blocks * pairs * shifts,)``: the (block, reference rotation, window) row of each block, pair and shift
    in the corrections ``(blocks * reference rotations * windows, references)``."""
    shift_bits: NDArray[np.float32]
    """``(blocks, 1, shifts, 1, 1)``: bits compared at each shift (the denominator of its agreeing fraction)."""
    mask_bits: NDArray[np.int32]
    """``(blocks, reference rotations, windows, 1)``: set bits of each complement mask."""


@dataclass(frozen=True)
class ProbeAlignments:
    """A probe prepared for :func:`probe_similarities`: its packed maps per block and reference rotation."""

    layout: CodeLayout
    n_probe_samples: int
    codes: tuple[tuple[NDArray[np.uint8], ...], ...]
    """Per block, per reference rotation: ``(pairs * shifts * probe samples, region bytes)``."""


def _region_span(lo: int, hi: int, layout: CodeLayout) -> tuple[int, int]:
    """Reference cells (one axis) that some shift pairs with a cell of the block ``[lo, hi)``."""
    span = range(-layout.max_shift_cells, layout.max_shift_cells + 1)
    used = [rows_b for _, rows_b, n in (block_window(lo, hi, s, layout.grid_cells) for s in span) if n > 0]
    return (min(w.start for w in used), max(w.stop for w in used)) if used else (lo, lo)


def _region(rot: int, rows: tuple[int, int], cols: tuple[int, int], layout: CodeLayout) -> _Region:
    _, size, _, channels = layout.code_shape
    starts = [((rot * size + row) * size + cols[0]) * channels for row in range(*rows)]
    leads = tuple(start % 8 for start in starts)
    row_bytes = max((-(-(lead + (cols[1] - cols[0]) * channels) // 8) for lead in leads), default=0)
    index = (np.array([start // 8 for start in starts], dtype=np.intp)[:, None] + np.arange(row_bytes)).reshape(-1)
    first = cols[0] * channels // 8
    rectangle = (rot, *rows, first, first + row_bytes) if (size * channels) % 8 == 0 else None
    # a row that needs fewer bytes than the longest may run past the code's end: those bytes are masked anyway
    return _Region(leads, row_bytes, np.minimum(index, layout.code_bytes - 1) + layout.coarse_bytes, rectangle)


def _gather(raw: NDArray[np.uint8], region: _Region, layout: CodeLayout) -> NDArray[np.uint8]:
    """``(samples, region bytes)``: the region of each sample blob (C-contiguous)."""
    if region.rectangle is None:
        return np.take(raw, region.byte_index, axis=1)
    rot, row0, row1, byte0, byte1 = region.rectangle
    rows = raw[:, layout.coarse_bytes :].reshape(len(raw), len(layout.rotations_deg), layout.grid_cells, -1)
    return np.ascontiguousarray(rows[:, rot, row0:row1, byte0:byte1]).reshape(len(raw), -1)


def _region_rows(out: NDArray[np.bool_], region: _Region) -> NDArray[np.bool_]:
    """``(codes, region rows, row bits)`` view of unpacked region codes."""
    return out[:, : len(region.leads) * region.row_bytes * 8].reshape(len(out), len(region.leads), -1)


def _pack_masks(masks: NDArray[np.bool_], region: _Region) -> NDArray[np.uint8]:
    """Packed ``(windows, region rows, region cols * channels)`` complement masks (set outside the cells)."""
    out = np.ones((len(masks), len(region.byte_index) * 8), dtype=np.bool_)
    rows, width = _region_rows(out, region), masks.shape[2]
    for r, lead in enumerate(region.leads):
        rows[:, r, lead : lead + width] = masks[:, r]
    return np.packbits(out, axis=1)


def _block(layout: CodeLayout, block: int, rotations_b: tuple[int, ...]) -> tuple[_Block, list[int], list[int]]:
    """The block's geometry, and per shift its window (index) and compared bits."""
    row0, row1, col0, col1 = layout.blocks[block]
    size, channels = layout.grid_cells, layout.channels
    rows, cols = _region_span(row0, row1, layout), _region_span(col0, col1, layout)
    windows = np.zeros((len(layout.shifts), rows[1] - rows[0], cols[1] - cols[0], channels), dtype=np.bool_)
    keys: list[tuple[int, int, int, int]] = []
    bits: list[int] = []
    for j, (dy, dx) in enumerate(layout.shifts):
        _, rows_b, n_rows = block_window(row0, row1, dy, size)
        _, cols_b, n_cols = block_window(col0, col1, dx, size)
        if n_rows * n_cols == 0:  # excluded by CodeLayout (shifts under half a block)
            raise ValueError("a shift compares no cell of a block")
        keys.append((rows_b.start - rows[0], rows_b.stop - rows[0], cols_b.start - cols[0], cols_b.stop - cols[0]))
        windows[j, keys[-1][0] : keys[-1][1], keys[-1][2] : keys[-1][3]] = True
        bits.append(n_rows * n_cols * channels)
    distinct = sorted(set(keys))
    masks = ~windows[[keys.index(key) for key in distinct]].reshape(len(distinct), rows[1] - rows[0], -1)
    regions = tuple(_region(rot_b, rows, cols, layout) for rot_b in rotations_b)
    packed = [_pack_masks(masks, region) for region in regions]
    bands = tuple(np.flatnonzero(p.any(axis=0)) if p.any() else np.zeros(1, dtype=np.intp) for p in packed)
    span = 2 * layout.max_shift_cells + 1
    geometry = _Block(
        rows=rows,
        cols=cols,
        windows=windows.reshape(span, span, rows[1] - rows[0], -1),
        regions=regions,
        bands=bands,
        masks=tuple(
            np.concatenate([p[:, band], np.zeros((1, len(band)), dtype=np.uint8)])
            for p, band in zip(packed, bands, strict=True)
        ),
    )
    return geometry, [distinct.index(key) for key in keys], bits


@cache
def _plan(layout: CodeLayout) -> _Plan:
    rotations_b = tuple(sorted({rb for _, rb in layout.rotation_pairs}))
    order = sorted(range(len(layout.rotation_pairs)), key=lambda k: layout.rotation_pairs[k][1])
    rot_b_of_pair = [layout.rotation_pairs[k][1] for k in order]
    slices = tuple((rot_b_of_pair.index(rb), len(rot_b_of_pair) - rot_b_of_pair[::-1].index(rb)) for rb in rotations_b)
    blocks, window_of_shift, shift_bits = [], [], []
    for block in range(len(layout.blocks)):
        geometry, of_shift, bits = _block(layout, block, rotations_b)
        blocks.append(geometry)
        window_of_shift.append(of_shift)
        shift_bits.append(bits)
    n_windows = max(len(geometry.masks[0]) - 1 for geometry in blocks)
    rotation_of_pair = np.array([rotations_b.index(rb) for rb in rot_b_of_pair], dtype=np.intp)
    mask_bits = np.zeros((len(blocks), len(rotations_b), n_windows, 1), dtype=np.int32)
    padded_blocks = []
    for b, geometry in enumerate(blocks):
        masks = [
            np.concatenate([m[:-1], np.repeat(m[:1], n_windows + 1 - len(m), axis=0), m[-1:]]) for m in geometry.masks
        ]
        mask_bits[b, :, :, 0] = [np.bitwise_count(m[:-1]).sum(axis=1) for m in masks]
        padded_blocks.append(replace(geometry, masks=tuple(masks)))
    return _Plan(
        rotations_b=rotations_b,
        pair_slices=slices,
        rotations_a=tuple(
            np.array([layout.rotation_pairs[k][0] for k in order[start:stop]], dtype=np.intp) for start, stop in slices
        ),
        rotation_of_pair=rotation_of_pair,
        blocks=tuple(padded_blocks),
        window_of_shift=(
            (np.arange(len(blocks))[:, None, None] * len(rotations_b) + rotation_of_pair[None, :, None]) * n_windows
            + np.array(window_of_shift, dtype=np.intp)[:, None, :]
        ).reshape(-1),
        shift_bits=np.array(shift_bits, dtype=np.float32)[:, None, :, None, None],
        mask_bits=mask_bits,
    )


def _pack_maps(padded: NDArray[np.bool_], geometry: _Block, region: _Region) -> NDArray[np.uint8]:
    """``(probe rotations, shifts, probe samples, region bytes)``: for shift ``(dy, dx)`` the probe's cell
    ``(r + dy, c + dx)`` at the reference's region cell ``(r, c)`` where that lies in the shift's window, else 0.
    ``padded`` holds the probe's bits ``(samples, rotations, rows, cols * channels)``, zero-padded by the reach."""
    n_probe, n_rot = padded.shape[:2]
    span, _, n_rows, width = geometry.windows.shape
    (r0, r1), (c0, c1) = geometry.rows, geometry.cols
    channels = width // (c1 - c0)
    if r1 + span - 1 > padded.shape[2] or (c1 + span - 1) * channels > padded.shape[3]:
        raise ValueError("probe padding smaller than the reach of the shifts")
    source = padded[:, :, r0:, c0 * channels :]
    s_probe, s_rot, s_row, s_col = source.strides
    # (rotation a, dy, dx, probe sample, row, cols * channels): source[sample, rotation, dy + row, dx * channels + j]
    placed = as_strided(
        source,
        shape=(n_rot, span, span, n_probe, n_rows, width),
        strides=(s_rot, s_row, s_col * channels, s_probe, s_row, s_col),
        writeable=False,
    )
    out = np.zeros((n_rot * span * span * n_probe, len(region.byte_index) * 8), dtype=np.bool_)
    rows = _region_rows(out, region)
    if len(set(region.leads)) == 1:
        lead = region.leads[0]
        target = rows[:, :, lead : lead + width].reshape(placed.shape)
        np.logical_and(placed, geometry.windows[:, :, None], out=target)
    else:
        for r, lead in enumerate(region.leads):
            target = rows[:, r, lead : lead + width].reshape((*placed.shape[:4], width))
            np.logical_and(placed[:, :, :, :, r], geometry.windows[:, :, None, r], out=target)
    return np.packbits(out, axis=1).reshape(n_rot, span * span, n_probe, -1)


def prepare_probe(samples: Sequence[bytes], layout: CodeLayout) -> ProbeAlignments:
    """The probe's packed maps for every alignment the layout searches (compute once per search)."""
    if not samples:
        raise TemplateError("templates need at least one sample", code="template_corrupt")
    plan = _plan(layout)
    probe = code_bits(list(samples), layout)
    reach = layout.max_shift_cells
    n_probe, n_rot, size, _, channels = probe.shape
    padded = np.zeros((n_probe, n_rot, size + 2 * reach, (size + 2 * reach) * channels), dtype=np.bool_)
    padded[:, :, reach : reach + size, reach * channels : (reach + size) * channels] = probe.reshape(
        n_probe, n_rot, size, -1
    )
    codes: list[tuple[NDArray[np.uint8], ...]] = []
    for geometry in plan.blocks:
        packed: dict[tuple[tuple[int, ...], int], NDArray[np.uint8]] = {}
        per_rotation: list[NDArray[np.uint8]] = []
        for region, rotations_a in zip(geometry.regions, plan.rotations_a, strict=True):
            key = (region.leads, region.row_bytes)
            if key not in packed:
                packed[key] = _pack_maps(padded, geometry, region)
            per_rotation.append(packed[key][rotations_a].reshape(-1, len(region.byte_index)))
        codes.append(tuple(per_rotation))
    return ProbeAlignments(layout=layout, n_probe_samples=len(probe), codes=tuple(codes))


def _best_per_sample(probe: ProbeAlignments, raw: NDArray[np.uint8]) -> NDArray[np.float32]:
    """``(reference samples,)``: the best score of any probe sample with each reference sample."""
    plan = _plan(probe.layout)
    n = len(raw)
    n_pairs, n_shifts = len(plan.rotation_of_pair), len(probe.layout.shifts)
    maps = np.empty((len(plan.blocks), n_pairs, n_shifts, probe.n_probe_samples, n), dtype=np.int32)
    masks = np.empty((len(plan.blocks), len(plan.rotations_b), plan.mask_bits.shape[2] + 1, n), dtype=np.int32)
    for b, geometry in enumerate(plan.blocks):
        for k, (start, stop) in enumerate(plan.pair_slices):
            region = _gather(raw, geometry.regions[k], probe.layout)
            hamming_distances(probe.codes[b][k], region, out=maps[b, start:stop].reshape(-1, n))
            hamming_distances(geometry.masks[k], np.take(region, geometry.bands[k], axis=1), out=masks[b, k])
    # twice the reference's set bits outside each window: |R| + |M| - d(R, M)
    outside = masks[:, :, -1:] + plan.mask_bits - masks[:, :, :-1]
    outside >>= 1
    maps -= outside.reshape(-1, n)[plan.window_of_shift].reshape(*maps.shape[:3], 1, n)
    agree = maps.astype(np.float32)
    agree /= plan.shift_bits
    np.subtract(1.0, agree, out=agree)
    block_best = agree.max(axis=2)  # (blocks, pairs, probe samples, references)
    total = block_best[0]
    for more in block_best[1:]:
        total += more
    best = total.max(axis=0)
    best *= np.float32(1.0 / len(plan.blocks))
    out: NDArray[np.float32] = best.max(axis=0)
    return out


def probe_similarities(probe: ProbeAlignments, references: Sequence[Sequence[bytes]]) -> NDArray[np.float64]:
    """Similarity of the probe with each reference (best over alignments and over all sample pairs), equal to
    ``similarity_matrix([probe], references)[0]``."""
    if not references:
        return np.zeros(0, dtype=np.float64)
    counts = [len(samples) for samples in references]
    if min(counts) == 0:
        raise TemplateError("templates need at least one sample", code="template_corrupt")
    samples = [sample for group in references for sample in group]
    sample_bytes = probe.layout.sample_bytes
    if any(len(sample) != sample_bytes for sample in samples):
        raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
    raw = np.frombuffer(b"".join(samples), dtype=np.uint8).reshape(len(samples), sample_bytes)
    best = np.concatenate(
        [_best_per_sample(probe, raw[i : i + _REFERENCE_CHUNK]) for i in range(0, len(raw), _REFERENCE_CHUNK)]
    )
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    return np.maximum.reduceat(best, starts).astype(np.float64)
