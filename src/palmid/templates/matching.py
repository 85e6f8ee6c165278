"""Alignment-searching code similarity, vectorised over template pairs.

For each searched alignment (a rotation pair and a shift ``(dy, dx)`` in cells) the overlapping windows of the
two code maps are packed to bytes and compared with faiss' all-pairs Hamming distance (hardware popcount), so
``d`` disagreeing bits over ``n`` overlapping bits give the fraction of agreeing bits ``1 - d / n``. The
similarity is the best fraction over all alignments, and over all sample pairs for multi-sample templates. With
``layout.match_blocks`` > 1 each block of the map takes its own best shift and a rotation pair scores the mean of
the blocks' best fractions. The overlap rule is symmetric (shift ``s`` of ``a`` against ``b`` equals shift ``-s``
of ``b`` against ``a``, and blocks are cut at the midpoint of the paired cells), so similarity is symmetric.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateError
from palmid.features.layout import CodeLayout

__all__ = [
    "best_alignment_similarity",
    "block_window",
    "code_bits",
    "hamming_distances",
    "probe_similarities",
    "signed_codes",
]

_ROW_BLOCK = 4096


def code_bits(samples: Sequence[bytes], layout: CodeLayout) -> NDArray[np.bool_]:
    """``(n, rotations, grid, grid, channels)`` fine code bits of sample blobs."""
    packed = np.empty((len(samples), layout.code_bytes), dtype=np.uint8)
    for i, sample in enumerate(samples):
        if len(sample) != layout.sample_bytes:
            raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
        packed[i] = np.frombuffer(sample, dtype=np.uint8, offset=layout.coarse_bytes)
    bits = np.unpackbits(packed, axis=1).astype(np.bool_)
    return bits.reshape(len(samples), *layout.code_shape)


def signed_codes(samples: Sequence[bytes], layout: CodeLayout) -> NDArray[np.float32]:
    """The same codes as float32 in {-1, +1} (for BLAS-based scorers such as the 1:N re-ranker)."""
    signed = code_bits(samples, layout).astype(np.float32)
    signed *= 2.0
    signed -= 1.0
    return signed


def block_window(lo: int, hi: int, shift: int, size: int) -> tuple[slice, slice, int]:
    """Cells ``r`` of ``a`` (paired with ``r - shift`` of ``b``) whose pair midpoint lies in ``[lo, hi)``."""
    half = -((-shift) // 2)  # ceil(shift / 2): the midpoint r - shift / 2 >= lo  <=>  r >= lo + ceil(shift / 2)
    start = max(lo + half, 0, shift)
    stop = min(hi + half, size, size + shift)
    return slice(start, stop), slice(start - shift, stop - shift), max(0, stop - start)


def _packed_window(bits: NDArray[np.bool_], rotation: int, rows: slice, cols: slice) -> NDArray[np.uint8]:
    window = bits[:, rotation, rows, cols].reshape(len(bits), -1)
    return np.ascontiguousarray(np.packbits(window, axis=1))


def hamming_distances(
    a: NDArray[np.uint8], b: NDArray[np.uint8], *, out: NDArray[np.int32] | None = None
) -> NDArray[np.int32]:
    """All-pairs Hamming distances ``(len(a), len(b))`` of byte codes of equal length (faiss popcount kernel, GIL
    released), written into ``out`` when given (C-contiguous int32 of that shape). The one wrapper of the kernel:
    the engine's matching, the 1:N re-ranker and the index's scans all call it."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError("Hamming distances need two uint8 code arrays of the same width")
    if out is None:
        out = np.empty((len(a), len(b)), dtype=np.int32)
    elif out.shape != (len(a), len(b)) or out.dtype != np.int32 or not out.flags.c_contiguous:
        raise ValueError("distance array has the wrong shape")
    if a.size and b.size:
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        faiss.hammings(  # type: ignore[attr-defined]
            faiss.swig_ptr(a), faiss.swig_ptr(b), len(a), len(b), a.shape[1], faiss.swig_ptr(out)
        )
    return out


def best_alignment_similarity(a: NDArray[np.bool_], b: NDArray[np.bool_], layout: CodeLayout) -> NDArray[np.float32]:
    """``(len(a), len(b))`` best score over the layout's rotation pairs; a rotation pair scores the mean over
    the layout's blocks of each block's best fraction of agreeing bits over the shifts (one block: the plain
    best-shift agreement)."""
    size = layout.grid_cells
    pairs = layout.rotation_pairs
    best = np.zeros((len(a), len(b)), dtype=np.float32)
    rotations_a = sorted({rot_a for rot_a, _ in pairs})
    rotations_b = sorted({rot_b for _, rot_b in pairs})
    blocks = layout.blocks
    weight = np.float32(1.0 / len(blocks))
    for start in range(0, len(a), _ROW_BLOCK):
        chunk = a[start : start + _ROW_BLOCK]
        total = np.zeros((len(pairs), len(chunk), len(b)), dtype=np.float32)
        block_best = np.empty_like(total)
        for row0, row1, col0, col1 in blocks:
            block_best.fill(0.0)
            for dy, dx in layout.shifts:
                rows_a, rows_b, n_rows = block_window(row0, row1, dy, size)
                cols_a, cols_b, n_cols = block_window(col0, col1, dx, size)
                n_bits = n_rows * n_cols * layout.channels
                if n_bits == 0:
                    continue
                packed_a = {rot: _packed_window(chunk, rot, rows_a, cols_a) for rot in rotations_a}
                packed_b = {rot: _packed_window(b, rot, rows_b, cols_b) for rot in rotations_b}
                for k, (rot_a, rot_b) in enumerate(pairs):
                    distance = hamming_distances(packed_a[rot_a], packed_b[rot_b]).astype(np.float32)
                    agree = 1.0 - distance / np.float32(n_bits)
                    np.maximum(block_best[k], agree, out=block_best[k])
            total += block_best
        np.max(total, axis=0, out=best[start : start + _ROW_BLOCK])
        best[start : start + _ROW_BLOCK] *= weight
    return best


def probe_similarities(
    probe: Sequence[bytes], references: Sequence[Sequence[bytes]], layout: CodeLayout
) -> NDArray[np.float64]:
    """Similarity of one (multi-sample) probe with each reference: equal to ``similarity_matrix`` row 0."""
    if not references:
        return np.zeros(0, dtype=np.float64)
    counts = [len(samples) for samples in references]
    if not probe or min(counts) == 0:
        raise TemplateError("templates need at least one sample", code="template_corrupt")
    matrix = best_alignment_similarity(
        code_bits(list(probe), layout), code_bits([s for samples in references for s in samples], layout), layout
    )
    row = matrix.max(axis=0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    return np.maximum.reduceat(row, starts).astype(np.float64)
