"""Do distractor palms look like real palms to the index? Scan-code and full-similarity statistics of both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from palmid.index.engine import EngineMatcher
from palmid.index.kernels import min_rows
from palmid.templates.template import Template

__all__ = ["Distribution", "RealismReport", "compare_realism"]


@dataclass(frozen=True, kw_only=True)
class Distribution:
    """Summary of a score or distance sample."""

    n: int
    mean: float
    sd: float
    q001: float
    q999: float

    @classmethod
    def of(cls, values: NDArray[np.float64]) -> Distribution:
        if values.size == 0:
            return cls(n=0, mean=float("nan"), sd=float("nan"), q001=float("nan"), q999=float("nan"))
        return cls(
            n=int(values.size),
            mean=float(values.mean()),
            sd=float(values.std()),
            q001=float(np.quantile(values, 0.001)),
            q999=float(np.quantile(values, 0.999)),
        )


@dataclass(frozen=True, kw_only=True)
class RealismReport:
    """Real enrolled palms vs distractors, as seen by non-mated real probes.

    ``bit_bias_*``: mean |P(bit = 1) - 0.5| over the scan code's bits; ``bit_probability_correlation``: Pearson
    correlation of the per-bit probabilities (1 = same bias pattern); ``scan_impostor_*``: the scan distance (the
    smallest normalised Hamming distance over the probe's shifted scan codes, what the index's first pass ranks by)
    of non-mated probes to real palms / to distractors; ``full_impostor_*``: full similarity likewise;
    ``scan_ks``: two-sample Kolmogorov-Smirnov statistic between the two scan impostor distributions.
    """

    bit_bias_real: float
    bit_bias_distractors: float
    bit_probability_correlation: float
    scan_impostor_real: Distribution
    scan_impostor_distractors: Distribution
    scan_ks: float
    full_impostor_real: Distribution
    full_impostor_distractors: Distribution


def compare_realism(
    *,
    matcher: EngineMatcher,
    real: Sequence[Template],
    distractors: Sequence[Template],
    probes: Sequence[Template],
    full_probes: int = 40,
) -> RealismReport:
    """Statistics of ``real`` enrolled templates vs ``distractors`` against non-mated real ``probes``."""
    width = matcher.scan_bytes
    real_codes = np.ascontiguousarray(matcher.index_codes(real)[:, :width])
    distractor_codes = np.ascontiguousarray(matcher.index_codes(distractors)[:, :width])
    probe_codes = [matcher.scan_probe_codes(t) for t in probes]
    p_real = np.unpackbits(real_codes, axis=1).mean(axis=0)
    p_distractors = np.unpackbits(distractor_codes, axis=1).mean(axis=0)
    scan_real = _scan_distances(probe_codes, real_codes)
    scan_distractors = _scan_distances(probe_codes, distractor_codes)
    full_real: list[NDArray[np.float64]] = []
    full_distractors: list[NDArray[np.float64]] = []
    for probe in probes[:full_probes]:
        full_real.append(matcher.compare_many(probe, real))
        full_distractors.append(matcher.compare_many(probe, distractors[: len(real)]))
    return RealismReport(
        bit_bias_real=float(np.abs(p_real - 0.5).mean()),
        bit_bias_distractors=float(np.abs(p_distractors - 0.5).mean()),
        bit_probability_correlation=float(np.corrcoef(p_real, p_distractors)[0, 1]),
        scan_impostor_real=Distribution.of(scan_real),
        scan_impostor_distractors=Distribution.of(scan_distractors),
        scan_ks=_ks_statistic(scan_real, scan_distractors),
        full_impostor_real=Distribution.of(np.concatenate(full_real) if full_real else np.zeros(0)),
        full_impostor_distractors=Distribution.of(
            np.concatenate(full_distractors) if full_distractors else np.zeros(0)
        ),
    )


def _scan_distances(probes: Sequence[NDArray[np.uint8]], gallery: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Scan distance of every probe (its shifted codes) to every gallery code, as fractions of the bits, flattened."""
    rows = np.arange(gallery.shape[0], dtype=np.int64)
    if not probes or not rows.size:
        return np.zeros(0, dtype=np.float64)
    distances = np.concatenate([min_rows(gallery, rows, codes) for codes in probes])
    normalised: NDArray[np.float64] = distances / (8.0 * gallery.shape[1])
    return normalised


def _ks_statistic(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    if a.size == 0 or b.size == 0:
        return float("nan")
    grid = np.union1d(a, b)
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / a.size
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())
