"""How an orientation-code sample is laid out in bytes, and the alignments searched when matching.

One sample (one enrolled image) is ``coarse_bytes`` of coarse code followed by the packed fine codes of the ROI
at ``len(rotations_deg)`` rotations: a ``(rotations, grid, grid, channels)`` boolean array packed with
``numpy.packbits`` (big-endian bit order).

Matching searches relative rotations by pairing stored rotations (``rotation_pairs``; the pair set is closed
under swapping, so similarity is symmetric) and relative shifts of up to ``max_shift_cells`` cells in x and y,
scoring the overlap of the two code maps. With ``match_blocks`` = B > 1 (version 2 on) the map is split into B x B
blocks and each block picks its own best shift (tolerance to non-rigid palm deformation); the score of a rotation
pair is the mean of the blocks' best agreements. Cell pairs are assigned to blocks by their midpoint (the mean of
the two cells' positions), so the block split is the same seen from either template (symmetric similarity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateError

__all__ = ["CodeLayout", "split_sample"]


@dataclass(frozen=True, kw_only=True)
class CodeLayout:
    """Geometry of one code sample. Part of the template version: any change needs a new version."""

    rotations_deg: tuple[float, ...]
    grid_cells: int
    channels: int
    coarse_bytes: int
    rotation_pairs: tuple[tuple[int, int], ...]
    max_shift_cells: int
    match_blocks: int = 1
    """Blocks per side that choose their shift independently (1: one global shift per alignment)."""

    def __post_init__(self) -> None:
        if self.match_blocks < 1 or self.grid_cells % self.match_blocks:
            raise ValueError("match_blocks must divide the grid")
        if self.max_shift_cells < 0 or self.max_shift_cells >= self.grid_cells // (2 * self.match_blocks):
            raise ValueError("max_shift_cells must be smaller than half a block")
        n_rot = len(self.rotations_deg)
        if any(not (0 <= a < n_rot and 0 <= b < n_rot) for a, b in self.rotation_pairs):
            raise ValueError("rotation pair index out of range")
        if {(b, a) for a, b in self.rotation_pairs} != set(self.rotation_pairs):
            raise ValueError("rotation pairs must be closed under swapping (symmetric similarity)")
        if (len(self.rotations_deg) * self.grid_cells**2 * self.channels) % 8:
            raise ValueError("code bits must fill whole bytes")

    @property
    def code_shape(self) -> tuple[int, int, int, int]:
        return (len(self.rotations_deg), self.grid_cells, self.grid_cells, self.channels)

    @property
    def code_bytes(self) -> int:
        rotations, rows, cols, channels = self.code_shape
        return rotations * rows * cols * channels // 8

    @property
    def sample_bytes(self) -> int:
        return self.coarse_bytes + self.code_bytes

    @property
    def shifts(self) -> tuple[tuple[int, int], ...]:
        span = range(-self.max_shift_cells, self.max_shift_cells + 1)
        return tuple((dy, dx) for dy in span for dx in span)

    @property
    def blocks(self) -> tuple[tuple[int, int, int, int], ...]:
        """``(row0, row1, col0, col1)`` cell ranges (by midpoint) of the blocks that choose their own shift."""
        step = self.grid_cells // self.match_blocks
        edges = [(i * step, (i + 1) * step) for i in range(self.match_blocks)]
        return tuple((r0, r1, c0, c1) for r0, r1 in edges for c0, c1 in edges)


def split_sample(sample: bytes, layout: CodeLayout) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Return ``(coarse code bytes, fine code bits of shape layout.code_shape)`` of one sample blob."""
    if len(sample) != layout.sample_bytes:
        raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
    raw = np.frombuffer(sample, dtype=np.uint8)
    coarse = raw[: layout.coarse_bytes]
    bits = np.unpackbits(raw[layout.coarse_bytes :]).astype(np.bool_)
    return coarse, bits.reshape(layout.code_shape)
