"""The engine's full comparison of ONE probe against many references, arranged for speed.

:func:`palmid.templates.compare.similarity_matrix` slices both code maps for every alignment (rotation pair and
shift). For 1:N re-ranking the probe is fixed, so each alignment is turned once into a zero-padded probe map laid
over the reference's full grid: the overlap dot product of that alignment is then the plain dot product with the
reference's whole map, and all alignments of one reference rotation are a single matrix product. Zeros add
nothing to a dot product of +-1 codes, so the result equals ``similarity_matrix`` (float32 rounding aside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateError
from palmid.features.layout import CodeLayout
from palmid.templates.matching import signed_codes

__all__ = ["ProbeAlignments", "prepare_probe", "probe_similarities"]


def _window(shift: int, size: int) -> slice:
    return slice(max(0, shift), size + min(0, shift))


@dataclass(frozen=True)
class ProbeAlignments:
    """Per reference rotation ``rb``: one zero-padded probe map per alignment, and its overlap bit count."""

    layout: CodeLayout
    n_probe_samples: int
    maps: tuple[tuple[int, NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]], ...]
    """``(rb, probe maps (alignments * probe samples, cells * channels), 0.5 / n_bits, sum of each map)``."""


def prepare_probe(samples: Sequence[bytes], layout: CodeLayout) -> ProbeAlignments:
    """Zero-padded probe maps for every alignment the layout searches, grouped by the reference's rotation."""
    probe = signed_codes(list(samples), layout)
    size = layout.grid_cells
    n_probe = len(probe)
    windows = [
        (_window(dy, size), _window(dx, size), _window(-dy, size), _window(-dx, size)) for dy, dx in layout.shifts
    ]
    maps: list[tuple[int, NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]] = []
    for rot_b in sorted({rb for _, rb in layout.rotation_pairs}):
        rots_a = [ra for ra, rb in layout.rotation_pairs if rb == rot_b]
        padded = np.zeros((len(rots_a), len(windows), n_probe, size, size, layout.channels), dtype=np.float32)
        scales = np.empty((len(rots_a), len(windows), n_probe), dtype=np.float32)
        for i, rot_a in enumerate(rots_a):
            for j, (rows_a, cols_a, rows_b, cols_b) in enumerate(windows):
                padded[i, j, :, rows_b, cols_b] = probe[:, rot_a, rows_a, cols_a]
                n_bits = (rows_b.stop - rows_b.start) * (cols_b.stop - cols_b.start) * layout.channels
                scales[i, j] = 0.5 / n_bits
        flat = padded.reshape(-1, size * size * layout.channels)
        maps.append((rot_b, flat, scales.reshape(-1), flat.sum(axis=1, dtype=np.float32)))
    return ProbeAlignments(layout=layout, n_probe_samples=n_probe, maps=tuple(maps))


def probe_similarities(probe: ProbeAlignments, references: Sequence[Sequence[bytes]]) -> NDArray[np.float64]:
    """Best agreement of the probe with each reference (best over alignments and over all sample pairs)."""
    if not references:
        return np.zeros(0, dtype=np.float64)
    counts = [len(samples) for samples in references]
    layout = probe.layout
    raw = np.frombuffer(b"".join(sample for samples in references for sample in samples), dtype=np.uint8)
    if raw.size != sum(counts) * layout.sample_bytes:
        raise TemplateError("template sample has the wrong size for its extractor", code="template_corrupt")
    fine = raw.reshape(sum(counts), layout.sample_bytes)[:, layout.coarse_bytes :]
    # reference bits as 0/1: with a +-1 probe map P, P . (2b - 1) = 2 P . b - sum(P)
    bits = np.unpackbits(fine, axis=1).reshape(len(fine), len(layout.rotations_deg), -1)
    best = np.zeros(len(fine), dtype=np.float32)
    for rot_b, matrix, scales, sums in probe.maps:
        agree = bits[:, rot_b].astype(np.float32) @ matrix.T
        agree *= 2.0
        agree -= sums
        agree *= scales
        agree += 0.5
        np.maximum(best, agree.max(axis=1), out=best)
    np.clip(best, 0.0, 1.0, out=best)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    return np.maximum.reduceat(best, starts).astype(np.float64)
