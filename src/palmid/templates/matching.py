"""Alignment-searching code similarity, vectorised over template pairs.

For each searched alignment (a rotation pair and a shift ``(dy, dx)`` in cells) the overlapping windows of the
two code maps are packed to bytes and compared with faiss' all-pairs Hamming distance (hardware popcount), so
``d`` disagreeing bits over ``n`` overlapping bits give the fraction of agreeing bits ``1 - d / n``. The
similarity is the best fraction over all alignments, and over all sample pairs for multi-sample templates. The
overlap rule is symmetric (shift ``s`` of ``a`` against ``b`` equals shift ``-s`` of ``b`` against ``a``), so
similarity is symmetric.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateError
from palmid.features.layout import CodeLayout

__all__ = ["best_alignment_similarity", "code_bits", "signed_codes"]

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


def _window(shift: int, size: int) -> slice:
    return slice(max(0, shift), size + min(0, shift))


def _packed_window(bits: NDArray[np.bool_], rotation: int, rows: slice, cols: slice) -> NDArray[np.uint8]:
    window = bits[:, rotation, rows, cols].reshape(len(bits), -1)
    return np.ascontiguousarray(np.packbits(window, axis=1))


def _hamming(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.int32]:
    """All-pairs Hamming distances ``(len(a), len(b))`` of byte codes of equal length."""
    distances = np.empty((len(a), len(b)), dtype=np.int32)
    if a.size and b.size:
        faiss.hammings(  # type: ignore[attr-defined]
            faiss.swig_ptr(a), faiss.swig_ptr(b), len(a), len(b), a.shape[1], faiss.swig_ptr(distances)
        )
    return distances


def best_alignment_similarity(a: NDArray[np.bool_], b: NDArray[np.bool_], layout: CodeLayout) -> NDArray[np.float32]:
    """``(len(a), len(b))`` best fraction of agreeing bits over the layout's rotation pairs and shifts."""
    size = layout.grid_cells
    best = np.zeros((len(a), len(b)), dtype=np.float32)
    rotations_a = sorted({rot_a for rot_a, _ in layout.rotation_pairs})
    rotations_b = sorted({rot_b for _, rot_b in layout.rotation_pairs})
    for dy, dx in layout.shifts:
        n_bits = (size - abs(dy)) * (size - abs(dx)) * layout.channels
        packed_b = {rot: _packed_window(b, rot, _window(-dy, size), _window(-dx, size)) for rot in rotations_b}
        for start in range(0, len(a), _ROW_BLOCK):
            block = a[start : start + _ROW_BLOCK]
            out = best[start : start + _ROW_BLOCK]
            packed_a = {rot: _packed_window(block, rot, _window(dy, size), _window(dx, size)) for rot in rotations_a}
            for rot_a, rot_b in layout.rotation_pairs:
                agree = 1.0 - _hamming(packed_a[rot_a], packed_b[rot_b]).astype(np.float32) / np.float32(n_bits)
                np.maximum(out, agree, out=out)
    return best
