"""The fast index's aligned re-ranking stage: shift-tolerant codes find shifted captures the scan code misses."""

from __future__ import annotations

from typing import Any

import pytest

from palmid.errors import ValidationFailed
from palmid.index.exact import ExactIndex
from palmid.index.fast import FastIndex
from palmid.index.profiles import SearchProfile


@pytest.mark.parametrize("aligned_prefilter_k", [40, 4096])
def test_shifted_captures_are_found_like_the_exact_index(
    aligned_matcher: Any, toys: Any, aligned_prefilter_k: int
) -> None:
    matcher = aligned_matcher
    gallery = [(f"s{i:04d}", toys.random()) for i in range(2000)]
    profile = SearchProfile(rerank_k=8, prefilter_k=2000, aligned_prefilter_k=aligned_prefilter_k)
    fast = FastIndex(matcher=matcher, profile=profile)
    exact = ExactIndex(matcher=matcher)
    fast.add_many(gallery)
    exact.add_many(gallery)
    # the scan keeps everyone; a one-byte shift scrambles the scan bytes, so only the aligned score can put
    # the mate among the 8 compared in full (with aligned_prefilter_k=40: after the half-code cascade)
    for subject_id, template in gallery[:40]:
        probe = toys.noisy(template, flip=0.12, shift=1)
        hit = fast.search(probe, k=1)[0]
        assert hit == exact.search(probe, k=1)[0]
        assert hit.subject_id == subject_id
        assert subject_id in fast.reference_neighbours(probe, k=3)
    # erasure moves the last row's aligned code too: the moved palm is still found, the removed one never
    last_id, last = gallery[-1]
    assert fast.remove(gallery[0][0])
    assert fast.search(toys.noisy(last, flip=0.1, shift=-1), k=1)[0].subject_id == last_id
    assert all(hit.subject_id != gallery[0][0] for hit in fast.search(gallery[0][1], k=8))
    assert fast.nbytes(include_templates=False) >= len(fast) * matcher.code_bytes


def test_aligned_options_are_checked(aligned_matcher: Any) -> None:
    with pytest.raises(ValidationFailed):
        FastIndex(matcher=aligned_matcher, profile=SearchProfile(rerank_k=32, aligned_prefilter_k=16))
    with pytest.raises(ValidationFailed):
        FastIndex(matcher=aligned_matcher, profile=SearchProfile(scan_words=aligned_matcher.scan_bytes // 8 + 1))


def test_rotated_aligned_codes_rank_the_shortlist(aligned_matcher: Any, toys: Any) -> None:
    # a two-byte roll is beyond the unrotated aligned codes (-1..+1) but inside the rotated set (-2..+2): the
    # rotation-searched stage puts the mate among the candidates even when the half-code cascade runs first
    gallery = [(f"s{i:04d}", toys.random()) for i in range(1500)]
    fast = FastIndex(
        matcher=aligned_matcher, profile=SearchProfile(rerank_k=4, prefilter_k=1500, aligned_prefilter_k=1500)
    )
    fast.add_many(gallery)
    for subject_id, template in gallery[:20]:
        probe = toys.noisy(template, flip=0.1, shift=2)
        assert fast.candidates(probe)[0] == subject_id
