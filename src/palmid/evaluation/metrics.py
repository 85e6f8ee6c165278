"""Verification and identification metrics on similarity scores (higher = same palm). Pure functions.

Decision rule: a comparison is accepted when its similarity is ``>= threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ValidationFailed

__all__ = [
    "FAR_TARGETS",
    "DetCurve",
    "det_curve",
    "equal_error_rate",
    "rank1_rate",
    "tar_at_far",
    "tar_at_fars",
]

FAR_TARGETS: tuple[float, ...] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
"""The false-accept rates reported by ``palmid eval`` (keys ``"1e-2"`` .. ``"1e-6"``)."""


@dataclass(frozen=True)
class DetCurve:
    """False-accept and false-reject rates at each candidate threshold (thresholds ascending)."""

    thresholds: NDArray[np.float64]
    far: NDArray[np.float64]
    frr: NDArray[np.float64]


def _checked(scores: NDArray[np.floating] | Sequence[float], name: str) -> NDArray[np.float64]:
    array = np.asarray(scores, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValidationFailed(f"no {name} scores", code="no_scores")
    if not np.all(np.isfinite(array)):
        raise ValidationFailed(f"{name} scores must be finite", code="invalid_scores")
    return array


def det_curve(genuine: NDArray[np.floating], impostor: NDArray[np.floating]) -> DetCurve:
    """FAR (impostors >= t) and FRR (genuine < t) at every distinct score t, plus t above the maximum."""
    gen = np.sort(_checked(genuine, "genuine"))
    imp = np.sort(_checked(impostor, "impostor"))
    scores = np.unique(np.concatenate([gen, imp]))
    thresholds = np.append(scores, np.nextafter(scores[-1], np.inf))
    far = 1.0 - np.searchsorted(imp, thresholds, side="left") / imp.size
    frr = np.searchsorted(gen, thresholds, side="left") / gen.size
    return DetCurve(thresholds=thresholds, far=far, frr=frr)


def equal_error_rate(genuine: NDArray[np.floating], impostor: NDArray[np.floating]) -> float:
    """The rate where FAR and FRR cross, linearly interpolated between neighbouring thresholds."""
    curve = det_curve(genuine, impostor)
    diff = curve.far - curve.frr  # non-increasing in the threshold
    crossing = int(np.argmax(diff <= 0))
    if diff[crossing] == 0 or crossing == 0:
        return float(curve.far[crossing] if diff[crossing] == 0 else (curve.far[0] + curve.frr[0]) / 2)
    before, after = crossing - 1, crossing
    step = diff[before] / (diff[before] - diff[after])
    return float(curve.far[before] + step * (curve.far[after] - curve.far[before]))


def tar_at_far(genuine: NDArray[np.floating], impostor: NDArray[np.floating], far: float) -> float | None:
    """Genuine accept rate at the lowest threshold whose FAR is <= ``far``; ``None`` when fewer than
    ``1 / far`` impostor scores make that FAR unmeasurable."""
    if not 0 < far < 1:
        raise ValidationFailed("far must be in (0, 1)", code="invalid_far")
    gen = _checked(genuine, "genuine")
    imp = np.sort(_checked(impostor, "impostor"))
    if imp.size * far < 1 - 1e-9:
        return None
    allowed = int(np.floor(imp.size * far + 1e-9))  # impostors that may be accepted
    threshold = np.nextafter(imp[imp.size - allowed - 1], np.inf)  # just above the first rejected impostor
    return float(np.count_nonzero(gen >= threshold) / gen.size)


def tar_at_fars(
    genuine: NDArray[np.floating], impostor: NDArray[np.floating], fars: Sequence[float] = FAR_TARGETS
) -> dict[str, float | None]:
    """``{"1e-2": tar, ...}`` for each FAR (keys formatted like ``1e-6``)."""
    return {f"{far:.0e}".replace("e-0", "e-"): tar_at_far(genuine, impostor, far) for far in fars}


def rank1_rate(
    similarity: NDArray[np.floating], probe_labels: Sequence[str], gallery_labels: Sequence[str]
) -> float | None:
    """Closed-set rank-1 identification rate: the best-scoring gallery entry has the probe's label.

    Probes whose label is absent from the gallery are left out (closed set); ties count as failures unless every
    tied entry has the right label. ``None`` when no probe has a gallery mate.
    """
    matrix = np.asarray(similarity, dtype=np.float64)
    if matrix.shape != (len(probe_labels), len(gallery_labels)):
        raise ValidationFailed("similarity shape does not match the labels", code="invalid_scores")
    gallery = np.asarray(gallery_labels, dtype=object)
    known = set(gallery_labels)
    hits = trials = 0
    for row, label in zip(matrix, probe_labels, strict=True):
        if label not in known:
            continue
        trials += 1
        best = row == row.max()
        hits += int(bool(np.all(gallery[best] == label)))
    return hits / trials if trials else None
