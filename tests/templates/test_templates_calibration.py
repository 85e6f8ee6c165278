"""Impostor tail model: binomial tail, fitting on synthetic impostor scores, shipped thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from palmid.errors import ConfigError, ValidationFailed
from palmid.evaluation.calibrate import fit_tail_model
from palmid.features.registry import DEFAULT_EXTRACTOR, extractor_names, get_extractor
from palmid.templates.calibration import (
    ImpostorTailModel,
    binomial_survival,
    fmr_at_threshold,
    models_for,
    threshold_for_fmr,
)


def test_binomial_survival_matches_direct_sum() -> None:
    survival = binomial_survival(20, 0.3)
    from math import comb

    direct = [sum(comb(20, j) * 0.3**j * 0.7 ** (20 - j) for j in range(k, 21)) for k in range(21)]
    assert np.allclose(survival, direct, rtol=1e-9, atol=1e-15)
    assert binomial_survival(2000, 0.5)[1900] < 1e-250  # deep tail, no underflow to NaN


def test_model_thresholds_are_monotonic() -> None:
    model = ImpostorTailModel(
        extractor_id="x", version=1, dataset="d", p=0.5, dof=600, alignments=50.0, n_impostor=10**6
    )
    thresholds = [model.threshold_for(fmr) for fmr in (1e-3, 1e-6, 1e-9)]
    assert thresholds == sorted(thresholds) and thresholds[0] > 0.5
    assert model.fmr_at(thresholds[1]) <= 1e-6
    assert model.threshold_for(1e-6, n_sample_pairs=25) >= thresholds[1]
    with pytest.raises(ConfigError):
        ImpostorTailModel(extractor_id="x", version=1, dataset="d", p=1.5, dof=600, alignments=1.0, n_impostor=1)


def test_fit_recovers_a_known_tail() -> None:
    rng = np.random.default_rng(4)
    dof, p, draws = 400, 0.5, 20
    single = rng.binomial(dof, p, size=50_000) / dof
    best = rng.binomial(dof, p, size=(200_000, draws)).max(axis=1) / dof
    fit = fit_tail_model(best, single, extractor_id="x", version=1, dataset="synthetic")
    truth = ImpostorTailModel(extractor_id="x", version=1, dataset="t", p=p, dof=dof, alignments=draws, n_impostor=1)
    for fmr in (1e-6, 1e-9):
        assert fit.model.threshold_for(fmr) == pytest.approx(truth.threshold_for(fmr), abs=0.02)
    assert np.allclose(np.log10(fit.model_fmr), np.log10(fit.levels), atol=0.3)


def test_fit_refuses_too_few_impostors() -> None:
    with pytest.raises(ValidationFailed) as caught:
        fit_tail_model(np.full(100, 0.5), np.full(100, 0.5), extractor_id="x", version=1, dataset="d")
    assert caught.value.code == "calibration_too_few"


def test_thresholds_for_the_shipped_extractor() -> None:
    extractor = get_extractor(DEFAULT_EXTRACTOR)
    assert models_for(extractor.extractor_id, extractor.version)
    strict, loose = threshold_for_fmr(1e-9), threshold_for_fmr(1e-3)
    assert 0.5 < loose < strict < 1.0
    assert fmr_at_threshold(strict) <= 1e-9
    with pytest.raises(ValidationFailed):
        threshold_for_fmr(0.0)
    with pytest.raises(ConfigError) as caught:
        threshold_for_fmr(1e-6, version=extractor.version + 100)
    assert caught.value.code == "calibration_missing"


def test_every_registered_extractor_version_ships_a_calibration() -> None:
    for name in extractor_names():
        extractor = get_extractor(name)
        models = models_for(extractor.extractor_id, extractor.version)
        assert {model.dataset for model in models} >= {"tongji", "coep", "polyu-nir"}
        threshold = threshold_for_fmr(1e-6, extractor_id=extractor.extractor_id, version=extractor.version)
        assert 0.55 < threshold < 0.8
