"""Similarity thresholds for a target false-match rate, from a fitted impostor tail model.

Model (Daugman's binomial argument for binary codes, with alignment search): at one fixed alignment, the number
of agreeing bits between two different palms behaves like a binomial count with ``dof`` effective degrees of
freedom (bits are correlated, so ``dof`` is far below the raw bit count) and agreement probability ``p``. The
similarity is the best of many alignments (rotations, shifts, sample pairs), which behaves like the best of
``alignments`` independent draws::

    Q(t)   = P[Binomial(dof, p) >= ceil(t * dof)]
    FMR(t) = 1 - (1 - Q(t)) ** (alignments * n_sample_pairs)

``p`` comes from the mean single-alignment impostor similarity; ``dof`` and ``alignments`` are fitted to the
observed upper tail of best-alignment impostor similarities on the development datasets
(:mod:`palmid.evaluation.calibrate`). The binomial tail then extrapolates to FMRs far below what the impostor
count can measure (1e-6 .. 1e-9). Several datasets ship their own fit; thresholds take the most conservative
(highest) of them. ``n_sample_pairs`` is the number of sample pairs searched (multi-sample templates: the product
of the sample counts), which raises the FMR of a comparison accordingly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ConfigError, ValidationFailed

__all__ = ["ImpostorTailModel", "binomial_survival", "fmr_at_threshold", "models_for", "threshold_for_fmr"]


def binomial_survival(dof: int, p: float) -> NDArray[np.float64]:
    """``P[Binomial(dof, p) >= k]`` for ``k = 0 .. dof``, computed in log space (accurate far into the tail)."""
    k = np.arange(dof + 1, dtype=np.float64)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, dof + 1, dtype=np.float64)))])
    log_pmf = log_fact[-1] - log_fact - log_fact[::-1] + k * math.log(p) + (dof - k) * math.log1p(-p)
    log_survival = np.logaddexp.accumulate(log_pmf[::-1])[::-1]
    return np.asarray(np.minimum(np.exp(log_survival), 1.0), dtype=np.float64)


def best_of_draws(survival: NDArray[np.float64], draws: float) -> NDArray[np.float64]:
    """Probability that the best of ``draws`` independent draws reaches each level: ``1 - (1 - Q) ** draws``."""
    return np.asarray(-np.expm1(draws * np.log1p(-np.minimum(survival, 1 - 1e-16))), dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class ImpostorTailModel:
    """A fitted impostor tail for one extractor version on one dataset."""

    extractor_id: str
    version: int
    dataset: str
    p: float
    dof: int
    alignments: float
    n_impostor: int

    def __post_init__(self) -> None:
        if not (0 < self.p < 1 and self.dof >= 10 and self.alignments >= 1):
            raise ConfigError("invalid impostor tail model", code="calibration_invalid")

    def fmr_table(self, *, n_sample_pairs: int = 1) -> NDArray[np.float64]:
        """FMR at thresholds ``k / dof`` for ``k = 0 .. dof`` (non-increasing)."""
        return best_of_draws(binomial_survival(self.dof, self.p), self.alignments * n_sample_pairs)

    def fmr_at(self, similarity: float, *, n_sample_pairs: int = 1) -> float:
        k = min(max(math.ceil(similarity * self.dof - 1e-9), 0), self.dof)
        return float(self.fmr_table(n_sample_pairs=n_sample_pairs)[k])

    def threshold_for(self, fmr: float, *, n_sample_pairs: int = 1) -> float:
        table = self.fmr_table(n_sample_pairs=n_sample_pairs)
        below = np.flatnonzero(table <= fmr)
        k = int(below[0]) if below.size else self.dof
        return min(k / self.dof, 1.0)


def models_for(extractor_id: str, version: int) -> tuple[ImpostorTailModel, ...]:
    """The shipped tail models for an extractor version; none -> ``ConfigError(calibration_missing)``."""
    from palmid.templates.calibration_data import CALIBRATION

    models = tuple(
        ImpostorTailModel(**entry)  # type: ignore[arg-type]
        for entry in CALIBRATION
        if entry["extractor_id"] == extractor_id and entry["version"] == version
    )
    if not models:
        raise ConfigError(
            f"no calibration shipped for extractor {extractor_id!r} version {version}", code="calibration_missing"
        )
    return models


def _resolve(extractor_id: str | None, version: int | None) -> tuple[str, int]:
    from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor

    name = extractor_id or DEFAULT_EXTRACTOR
    return name, version if version is not None else get_extractor(name).version


def _check_pairs(n_sample_pairs: int) -> None:
    if n_sample_pairs < 1:
        raise ValidationFailed("n_sample_pairs must be at least 1", code="invalid_request")


def threshold_for_fmr(
    fmr: float, *, extractor_id: str | None = None, version: int | None = None, n_sample_pairs: int = 1
) -> float:
    """The similarity threshold (accept when ``similarity >= threshold``) whose modelled false-match rate per
    comparison is at most ``fmr`` on every calibration dataset. For 1:N over N references pass ``fmr / N``."""
    if not 0 < fmr <= 0.5:
        raise ValidationFailed("fmr must be in (0, 0.5]", code="invalid_fmr")
    _check_pairs(n_sample_pairs)
    name, ver = _resolve(extractor_id, version)
    return max(model.threshold_for(fmr, n_sample_pairs=n_sample_pairs) for model in models_for(name, ver))


def fmr_at_threshold(
    similarity: float, *, extractor_id: str | None = None, version: int | None = None, n_sample_pairs: int = 1
) -> float:
    """The modelled false-match rate of accepting at ``similarity`` (the highest over calibration datasets)."""
    _check_pairs(n_sample_pairs)
    name, ver = _resolve(extractor_id, version)
    return max(model.fmr_at(similarity, n_sample_pairs=n_sample_pairs) for model in models_for(name, ver))
