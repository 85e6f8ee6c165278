"""Fixed-size coarse codes for 1:N shortlisting, compared by plain Hamming distance.

A coarse code is 2048 bits (256 bytes): signs of box-pooled low-frequency Gabor responses (two wavelengths,
8 orientations, real and imaginary) on an 8x8 grid of the un-rotated ROI. No alignment search: shortlist with
it, then re-rank with :func:`palmid.templates.compare.compare_templates`. For a multi-sample template the code
is the bitwise majority of its samples' codes (ties -> the first sample's bit).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ValidationFailed
from palmid.features.layout import split_sample
from palmid.features.registry import layout_for
from palmid.templates.template import Template

__all__ = ["COARSE_CODE_BITS", "COARSE_CODE_BYTES", "coarse_code", "coarse_similarities"]

COARSE_CODE_BYTES = 256
COARSE_CODE_BITS = COARSE_CODE_BYTES * 8
_BLOCK_ROWS = 16_384


def coarse_code(template: Template) -> NDArray[np.uint8]:
    """The template's ``(COARSE_CODE_BYTES,)`` uint8 coarse code."""
    layout = layout_for(template.extractor_id, template.version)
    codes = [split_sample(sample, layout)[0] for sample in template.samples]
    if len(codes) == 1:
        return codes[0].copy()
    bits = np.unpackbits(np.stack(codes), axis=1).astype(np.int32)
    votes = 2 * bits.sum(axis=0) - len(codes)
    majority = np.where(votes == 0, bits[0], votes > 0).astype(np.uint8)
    return np.packbits(majority)


def coarse_similarities(query: NDArray[np.uint8], codes: NDArray[np.uint8]) -> NDArray[np.float32]:
    """``1 - hamming / 2048`` of ``query`` (256,) against each row of ``codes`` (N, 256)."""
    if query.shape != (COARSE_CODE_BYTES,) or codes.ndim != 2 or codes.shape[1] != COARSE_CODE_BYTES:
        raise ValidationFailed("coarse codes must be uint8 arrays of 256 bytes per row", code="invalid_request")
    words_q = np.ascontiguousarray(query, dtype=np.uint8).view(np.uint64)
    words = np.ascontiguousarray(codes, dtype=np.uint8).view(np.uint64)
    distance = np.empty(len(words), dtype=np.uint16)
    block = min(_BLOCK_ROWS, len(words))
    xor = np.empty((block, words.shape[1]), dtype=np.uint64)
    counts = np.empty((block, words.shape[1]), dtype=np.uint8)
    for start in range(0, len(words), block):  # cache-sized blocks: no full-size temporaries
        rows = words[start : start + block]
        n = len(rows)
        np.bitwise_xor(rows, words_q, out=xor[:n])
        np.bitwise_count(xor[:n], out=counts[:n])
        counts[:n].sum(axis=1, dtype=np.uint16, out=distance[start : start + n])
    similarity: NDArray[np.float32] = 1.0 - distance.astype(np.float32) / np.float32(COARSE_CODE_BITS)
    return similarity
