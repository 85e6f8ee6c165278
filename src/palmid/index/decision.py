"""The identification decision: a match only if it keeps the false-positive identification rate at its target.

With ``N`` enrolled palms, a non-mated probe is falsely identified when any of the ``N`` comparisons passes the
threshold: ``FPIR = 1 - (1 - FMR)^N``. The per-comparison false-match rate that keeps FPIR at its target is
therefore ``FMR = 1 - (1 - FPIR)^(1/N)`` (about ``FPIR / N``), never looser than ``max_fmr`` (small galleries keep
a strict threshold) and never stricter than ``min_fmr`` (the calibration limit). The engine's calibration turns the
FMR into a similarity threshold. Duplicate-enrollment detection is the same search with the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from palmid.errors import ConfigError
from palmid.index.base import SearchHit

T_contra = TypeVar("T_contra", contravariant=True)

ThresholdForFmr = Callable[[float], float]
"""Turns a per-comparison false-match rate into a similarity threshold (the engine's calibration)."""


class Searchable(Protocol[T_contra]):
    def search(self, template: T_contra, *, k: int = 1) -> list[SearchHit]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class IdentificationPolicy:
    """Target false-positive identification rate over the whole gallery, and the per-comparison FMR bounds."""

    fpir: float = 1e-3
    max_fmr: float = 1e-6
    min_fmr: float = 1e-12
    candidates: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.fpir < 1:
            raise ConfigError("identification FPIR must be in (0, 1)", code="config_invalid")
        if not 0 < self.min_fmr <= self.max_fmr < 1:
            raise ConfigError("identification FMR bounds need 0 < min_fmr <= max_fmr < 1", code="config_invalid")
        if self.candidates < 1:
            raise ConfigError("identification needs at least one candidate", code="config_invalid")


@dataclass(frozen=True, kw_only=True)
class IdentificationDecision:
    """The outcome of one 1:N search. ``subject_id`` is set only when ``matched``."""

    matched: bool
    subject_id: str | None
    ambiguous: bool
    """More than one enrolled palm passed the threshold (the best one is still the answer)."""
    threshold: float
    fmr: float
    gallery_size: int


def per_comparison_fmr(*, fpir: float, gallery_size: int, max_fmr: float = 1.0, min_fmr: float = 0.0) -> float:
    """``1 - (1 - fpir)^(1/N)`` (numerically stable), clipped to ``[min_fmr, max_fmr]``; ``max_fmr`` when N = 0."""
    if not 0 < fpir < 1:
        raise ConfigError("FPIR must be in (0, 1)", code="config_invalid")
    if gallery_size <= 0:
        return max_fmr
    fmr = -math.expm1(math.log1p(-fpir) / gallery_size)
    return min(max(fmr, min_fmr), max_fmr)


def fpir_for_fmr(*, fmr: float, gallery_size: int) -> float:
    """The false-positive identification rate that a per-comparison FMR gives over ``gallery_size`` references."""
    if gallery_size <= 0:
        return 0.0
    return -math.expm1(gallery_size * math.log1p(-fmr))


def identification_threshold(
    *, policy: IdentificationPolicy, gallery_size: int, threshold_for_fmr: ThresholdForFmr
) -> tuple[float, float]:
    """``(threshold, fmr)`` for a gallery of ``gallery_size`` palms under ``policy``."""
    fmr = per_comparison_fmr(
        fpir=policy.fpir, gallery_size=gallery_size, max_fmr=policy.max_fmr, min_fmr=policy.min_fmr
    )
    return threshold_for_fmr(fmr), fmr


def decide(hits: list[SearchHit], *, threshold: float, fmr: float, gallery_size: int) -> IdentificationDecision:
    """Match the best hit if its similarity reaches ``threshold``; flag other hits that also reach it."""
    passing = [hit for hit in hits if hit.similarity >= threshold]
    best = max(passing, key=lambda hit: hit.similarity, default=None)
    return IdentificationDecision(
        matched=best is not None,
        subject_id=best.subject_id if best is not None else None,
        ambiguous=len(passing) > 1,
        threshold=threshold,
        fmr=fmr,
        gallery_size=gallery_size,
    )


def identify(
    index: Searchable[T_contra],
    template: T_contra,
    *,
    policy: IdentificationPolicy,
    threshold_for_fmr: ThresholdForFmr,
) -> IdentificationDecision:
    """Search ``index`` and decide at the policy's FPIR for the current gallery size."""
    gallery_size = len(index)
    threshold, fmr = identification_threshold(
        policy=policy, gallery_size=gallery_size, threshold_for_fmr=threshold_for_fmr
    )
    hits = index.search(template, k=policy.candidates) if gallery_size else []
    return decide(hits, threshold=threshold, fmr=fmr, gallery_size=gallery_size)


def find_duplicate(
    index: Searchable[T_contra],
    template: T_contra,
    *,
    policy: IdentificationPolicy,
    threshold_for_fmr: ThresholdForFmr,
) -> str | None:
    """The subject already enrolled with this palm (same search, same rule as identification), or ``None``."""
    decision = identify(index, template, policy=policy, threshold_for_fmr=threshold_for_fmr)
    return decision.subject_id
