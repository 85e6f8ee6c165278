"""The identification decision rule: FPIR target -> per-comparison FMR -> threshold."""

from __future__ import annotations

import math
from typing import Any

import pytest

from palmid.errors import ConfigError
from palmid.index.base import SearchHit
from palmid.index.decision import (
    IdentificationPolicy,
    decide,
    find_duplicate,
    fpir_for_fmr,
    identification_threshold,
    identify,
    per_comparison_fmr,
)
from palmid.index.fast import FastIndex
from palmid.index.profiles import SearchProfile


def test_per_comparison_fmr_keeps_fpir_at_target() -> None:
    for n in (1, 10, 1000, 1_000_000):
        fmr = per_comparison_fmr(fpir=1e-3, gallery_size=n)
        assert fpir_for_fmr(fmr=fmr, gallery_size=n) == pytest.approx(1e-3, rel=1e-9)
    assert per_comparison_fmr(fpir=1e-3, gallery_size=1) == pytest.approx(1e-3)
    # about FPIR / N for large N, slightly above it
    fmr_1m = per_comparison_fmr(fpir=1e-3, gallery_size=1_000_000)
    assert 1e-9 < fmr_1m < 1.001e-9
    assert fmr_1m == pytest.approx(-math.log1p(-1e-3) / 1e6, rel=1e-6)


def test_per_comparison_fmr_is_clipped() -> None:
    assert per_comparison_fmr(fpir=1e-3, gallery_size=10, max_fmr=1e-6) == 1e-6
    assert per_comparison_fmr(fpir=1e-3, gallery_size=10**12, min_fmr=1e-12, max_fmr=1e-6) == 1e-12
    assert per_comparison_fmr(fpir=1e-3, gallery_size=0, max_fmr=1e-6) == 1e-6
    with pytest.raises(ConfigError):
        per_comparison_fmr(fpir=0.0, gallery_size=10)
    with pytest.raises(ConfigError):
        IdentificationPolicy(fpir=1.5)
    with pytest.raises(ConfigError):
        IdentificationPolicy(min_fmr=1e-3, max_fmr=1e-6)


def test_threshold_grows_with_gallery() -> None:
    policy = IdentificationPolicy(fpir=1e-3, max_fmr=1e-6)
    calls: list[float] = []

    def threshold_for_fmr(fmr: float) -> float:
        calls.append(fmr)
        return 1.0 + math.log10(1.0 / fmr) / 100  # any decreasing function of fmr

    small, fmr_small = identification_threshold(policy=policy, gallery_size=100, threshold_for_fmr=threshold_for_fmr)
    large, fmr_large = identification_threshold(
        policy=policy, gallery_size=1_000_000, threshold_for_fmr=threshold_for_fmr
    )
    assert fmr_small == 1e-6  # capped: a small gallery keeps the strict per-comparison rate
    assert fmr_large == pytest.approx(1e-9, rel=1e-3)
    assert large > small
    assert calls == [fmr_small, fmr_large]


def test_decide_matches_best_hit_above_threshold() -> None:
    hits = [SearchHit("a", 0.9), SearchHit("b", 0.8), SearchHit("c", 0.5)]
    decision = decide(hits, threshold=0.85, fmr=1e-9, gallery_size=3)
    assert decision.matched and decision.subject_id == "a" and not decision.ambiguous
    decision = decide(hits, threshold=0.75, fmr=1e-9, gallery_size=3)
    assert decision.subject_id == "a" and decision.ambiguous
    decision = decide(hits, threshold=0.95, fmr=1e-9, gallery_size=3)
    assert not decision.matched and decision.subject_id is None
    assert not decide([], threshold=0.5, fmr=1e-6, gallery_size=0).matched


def test_identify_and_duplicate_use_the_same_rule(matcher: Any, toys: Any) -> None:
    index = FastIndex(matcher=matcher, profile=SearchProfile(rerank_k=8))
    policy = IdentificationPolicy(fpir=1e-3)

    def threshold_for_fmr(fmr: float) -> float:
        del fmr
        return 0.75  # toy calibration: random toy codes agree ~0.5, noisy copies ~0.85

    palm = toys.random()
    assert not identify(index, palm, policy=policy, threshold_for_fmr=threshold_for_fmr).matched  # empty gallery
    gallery = [(f"s{i}", toys.random()) for i in range(200)]
    index.add_many([*gallery, ("target", palm)])
    decision = identify(index, toys.noisy(palm), policy=policy, threshold_for_fmr=threshold_for_fmr)
    assert decision.matched and decision.subject_id == "target"
    assert decision.gallery_size == 201
    assert decision.fmr == pytest.approx(per_comparison_fmr(fpir=1e-3, gallery_size=201, max_fmr=1e-6))
    assert find_duplicate(index, toys.noisy(palm), policy=policy, threshold_for_fmr=threshold_for_fmr) == "target"
    assert find_duplicate(index, toys.random(), policy=policy, threshold_for_fmr=threshold_for_fmr) is None
    index.remove("target")
    assert find_duplicate(index, toys.noisy(palm), policy=policy, threshold_for_fmr=threshold_for_fmr) is None
