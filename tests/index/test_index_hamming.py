"""Hamming kernels of the fast index: exact selection, row splitting, and scans split over threads."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from palmid.index import hamming as hamming_module
from palmid.index.fast import FastIndex
from palmid.index.hamming import hamming_scan, min_hamming, smallest, split_rows


def test_smallest_is_the_exact_k_smallest_with_ties_by_row() -> None:
    rng = np.random.default_rng(3)
    distances = rng.integers(0, 40, 10_000).astype(np.int32)
    for k in (1, 7, 500, 9_999, 10_000):
        rows = smallest(distances, k)
        assert rows.shape == (k,)
        assert len(set(rows.tolist())) == k
        chosen = np.sort(distances[rows])
        assert np.array_equal(chosen, np.sort(distances)[:k])


def test_split_rows_covers_every_row_once() -> None:
    assert split_rows(10, 2, minimum=100) == [slice(0, 10)]
    parts = split_rows(1_000_001, 2, minimum=1000)
    assert len(parts) == 2
    assert parts[0].start == 0 and parts[-1].stop == 1_000_001
    assert parts[0].stop == parts[1].start
    assert split_rows(0, 4, minimum=1) == [slice(0, 0)]


def test_scans_match_numpy_popcount() -> None:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (300, 24), dtype=np.uint8)
    query = rng.integers(0, 256, 24, dtype=np.uint8)
    out = np.empty(300, dtype=np.int32)
    hamming_scan(query, codes, 300, out)
    assert np.array_equal(out, np.bitwise_count(codes ^ query).sum(axis=1))
    queries = rng.integers(0, 256, (5, 24), dtype=np.uint8)
    want = np.bitwise_count(codes[None] ^ queries[:, None]).sum(axis=2).min(axis=0)
    assert np.array_equal(min_hamming(queries, codes), want)


@pytest.mark.parametrize("use_aligned", [False, True])
def test_split_scans_give_the_same_results_as_one_thread(
    matcher: Any, aligned_matcher: Any, toys: Any, monkeypatch: pytest.MonkeyPatch, use_aligned: bool
) -> None:
    chosen = aligned_matcher if use_aligned else matcher
    prefilter_k = 1500 if use_aligned else 200  # a shifted probe's coarse head is scrambled (toy codes)
    gallery = [(f"s{i:04d}", toys.random()) for i in range(1500)]
    probes = [toys.noisy(t, shift=1 if use_aligned else 0) for _, t in gallery[:25]] + [toys.random() for _ in range(5)]
    single = FastIndex(
        matcher=chosen, rerank_k=8, head_bytes=16, prefilter_k=prefilter_k, aligned_prefilter_k=50, scan_threads=1
    )
    single.add_many(gallery)
    want = [single.search(p, k=3) for p in probes]
    monkeypatch.setattr(hamming_module, "MIN_PARALLEL_ROWS", 64)  # split even this small gallery
    split = FastIndex(
        matcher=chosen, rerank_k=8, head_bytes=16, prefilter_k=prefilter_k, aligned_prefilter_k=50, scan_threads=2
    )
    split.add_many(gallery)
    assert [split.search(p, k=3) for p in probes] == want
    assert [hits[0].subject_id for hits in want[:25]] == [sid for sid, _ in gallery[:25]]


def test_scan_threads_must_be_positive(matcher: Any) -> None:
    from palmid.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        FastIndex(matcher=matcher, scan_threads=0)


def test_smallest_on_large_arrays_equals_a_full_count() -> None:
    rng = np.random.default_rng(11)
    for trial in range(6):
        # skewed distributions too: the sampled radius guess must never change the answer
        if trial % 2:
            distances = rng.integers(0, 2048, 200_000).astype(np.int32)
        else:
            distances = np.minimum(rng.exponential(30, 200_000), 2047).astype(np.int32)
        for k in (1, 100, 5_000, 16_384, 150_000):
            rows = smallest(distances, k)
            order = np.lexsort((np.arange(distances.shape[0]), distances))[:k]
            assert np.array_equal(rows, np.sort(order))
