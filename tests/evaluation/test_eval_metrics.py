"""Metrics on synthetic scores (EER, TAR@FAR, DET, rank-1), including the all-failure case."""

from __future__ import annotations

import numpy as np
import pytest

from palmid.errors import ValidationFailed
from palmid.evaluation.metrics import det_curve, equal_error_rate, rank1_rate, tar_at_far, tar_at_fars


def test_separated_scores_have_zero_eer_and_full_tar() -> None:
    genuine = np.linspace(0.7, 0.9, 50)
    impostor = np.linspace(0.4, 0.6, 5000)
    assert equal_error_rate(genuine, impostor) == 0.0
    assert tar_at_far(genuine, impostor, 1e-3) == 1.0


def test_eer_of_known_overlap() -> None:
    genuine = np.arange(10, 20, dtype=float)  # 10..19
    impostor = np.arange(0, 15, dtype=float) + 0.5  # 0.5..14.5
    # at threshold 15: FAR = 0/15 ... at 12.5 FAR = 3/15 = 0.2, FRR = 3/10 = 0.3; crossing between
    eer = equal_error_rate(genuine, impostor)
    assert 0.15 < eer < 0.3


def test_identical_distributions_give_half() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(20_000)
    assert equal_error_rate(scores[:10_000], scores[10_000:]) == pytest.approx(0.5, abs=0.02)


def test_all_failures_to_acquire() -> None:
    genuine = np.zeros(30)
    impostor = np.zeros(300)
    assert equal_error_rate(genuine, impostor) == pytest.approx(0.5)
    assert tar_at_far(genuine, impostor, 1e-2) == 0.0


def test_tar_at_far_counts_allowed_false_accepts() -> None:
    impostor = np.arange(1000) / 1000  # 0.000 .. 0.999
    genuine = np.array([0.9975, 0.9985, 0.9995, 0.5])
    # FAR 1e-3 allows one impostor (0.999) above threshold: threshold just above 0.998
    assert tar_at_far(genuine, impostor, 1e-3) == pytest.approx(0.5)
    assert tar_at_far(genuine, impostor, 1e-2) == pytest.approx(0.75)
    assert tar_at_far(genuine, impostor, 1e-4) is None
    tars = tar_at_fars(genuine, impostor)
    assert list(tars) == ["1e-2", "1e-3", "1e-4", "1e-5", "1e-6"]
    assert tars["1e-6"] is None


def test_det_curve_is_monotonic() -> None:
    rng = np.random.default_rng(1)
    curve = det_curve(rng.normal(1, 0.3, 500), rng.normal(0, 0.3, 5000))
    assert np.all(np.diff(curve.far) <= 0) and np.all(np.diff(curve.frr) >= 0)
    assert curve.far[0] == 1.0 and curve.far[-1] == 0.0 and curve.frr[-1] == 1.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        equal_error_rate(np.array([]), np.array([0.1]))
    with pytest.raises(ValidationFailed):
        equal_error_rate(np.array([np.nan]), np.array([0.1]))
    with pytest.raises(ValidationFailed):
        tar_at_far(np.array([1.0]), np.array([0.1]), 0.0)


def test_rank1() -> None:
    similarity = np.array([[0.9, 0.1, 0.2], [0.3, 0.2, 0.8], [0.5, 0.5, 0.1], [0.1, 0.1, 0.1]])
    gallery = ["a", "b", "c"]
    # probe 0 right, probe 1 wrong (c wins for b), probe 2 tie a/b -> fail, probe 3 unknown label -> skipped
    assert rank1_rate(similarity, ["a", "b", "a", "z"], gallery) == pytest.approx(1 / 3)
    assert rank1_rate(similarity[:1], ["z"], gallery) is None
    with pytest.raises(ValidationFailed):
        rank1_rate(similarity, ["a"], gallery)
