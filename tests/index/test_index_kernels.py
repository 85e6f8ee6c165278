"""Native Hamming kernels of the fast index: both implementations equal a numpy reference, sizes are checked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from palmid.index import _kernels
from palmid.index import kernels as kernels_module
from palmid.index.fast import FastIndex
from palmid.index.hamming import split_rows
from palmid.index.kernels import LANES, LaneCodes, available_kernels, best_kernel, min_rows, scan_min
from palmid.index.profiles import SearchProfile

KERNELS = ["best", *available_kernels()]


def _lane_codes(codes: NDArray[np.uint8]) -> LaneCodes:
    lanes = LaneCodes(words=codes.shape[1] // 8)
    lanes.reserve(codes.shape[0], used=0)
    lanes.set_rows(0, codes)
    return lanes


def _min_hamming(probes: NDArray[np.uint8], codes: NDArray[np.uint8]) -> NDArray[np.int64]:
    distances: NDArray[np.int64] = np.bitwise_count(codes[None] ^ probes[:, None]).sum(axis=2).min(axis=0)
    return distances


def test_best_kernel_is_named_and_unavailable_ones_are_refused() -> None:
    assert best_kernel() in {"avx512", "popcnt", "portable"}
    assert available_kernels()[0] == "portable" and available_kernels()[-1] == best_kernel()
    codes = np.zeros((8, 8), dtype=np.uint8)
    for name in {"popcnt", "avx512"} - set(available_kernels()):
        with pytest.raises(ValueError):
            scan_min(_lane_codes(codes), 8, codes[:1], kernel=name)  # type: ignore[arg-type]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("words", [1, 3, 12, 16])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 1000])
def test_scan_min_equals_numpy(kernel: Any, words: int, n: int) -> None:
    rng = np.random.default_rng(words * 1000 + n)
    codes = rng.integers(0, 256, (n, 8 * words), dtype=np.uint8)
    lanes = _lane_codes(codes)
    for n_probes in (1, 7, 8, 13, 25, 75):
        probes = rng.integers(0, 256, (n_probes, 8 * words), dtype=np.uint8)
        scanned = scan_min(lanes, n, probes, kernel=kernel)
        want = _min_hamming(probes, codes)
        assert scanned.distances.dtype == np.uint16
        assert np.array_equal(scanned.distances, want)
        assert np.array_equal(scanned.histogram, np.bincount(want, minlength=64 * words + 1))
        prefix = max(1, words - 2)  # the first words only (a cheaper scan profile)
        assert np.array_equal(
            scan_min(lanes, n, probes, words=prefix, kernel=kernel).distances,
            _min_hamming(probes[:, : 8 * prefix], codes[:, : 8 * prefix]),
        )


@pytest.mark.parametrize("kernel", KERNELS)
def test_scan_split_over_threads_is_the_same(kernel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (5003, 16), dtype=np.uint8)
    lanes = _lane_codes(codes)
    probes = rng.integers(0, 256, (13, 16), dtype=np.uint8)
    one = scan_min(lanes, 5003, probes, threads=1, kernel=kernel)
    monkeypatch.setattr(kernels_module, "_MIN_PARALLEL_GROUPS", 16)
    two = scan_min(lanes, 5003, probes, threads=2, kernel=kernel)
    assert np.array_equal(one.distances, two.distances)
    assert np.array_equal(one.histogram, two.histogram)


@pytest.mark.parametrize("kernel", KERNELS)
def test_smallest_is_the_exact_k_smallest_with_ties_by_row(kernel: Any) -> None:
    rng = np.random.default_rng(3)
    for trial in range(4):
        n = 200_003 if trial < 2 else 1000
        codes = rng.integers(0, 256, (n, 8), dtype=np.uint8)
        if trial % 2:  # many ties: half the rows are copies of a few codes
            codes[: n // 2] = codes[rng.integers(0, 5, n // 2) + n // 2]
        lanes = _lane_codes(codes)
        probes = rng.integers(0, 256, (3, 8), dtype=np.uint8)
        scanned = scan_min(lanes, n, probes)
        order = np.lexsort((np.arange(n), scanned.distances))
        for k in (1, 7, 500, 16_384, n - 1, n, n + 5):
            rows = scanned.smallest(k, kernel=kernel)
            assert np.array_equal(rows, np.sort(order[:k])), k


def test_scan_of_an_empty_gallery() -> None:
    lanes = LaneCodes(words=2)
    scanned = scan_min(lanes, 0, np.zeros((1, 16), dtype=np.uint8))
    assert scanned.distances.shape == (0,)
    assert scanned.smallest(3).shape == (0,)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("width", [1, 17, 64, 148, 296, 300])
def test_min_rows_equals_numpy(kernel: Any, width: int) -> None:
    rng = np.random.default_rng(width)
    codes = rng.integers(0, 256, (500, 300), dtype=np.uint8)
    rows = rng.integers(0, 500, 333)
    for n_probes in (1, 9, 25, 75):
        probes = rng.integers(0, 256, (n_probes, width), dtype=np.uint8)
        got = min_rows(codes, rows, probes, width=width, kernel=kernel)
        assert np.array_equal(got, _min_hamming(probes, codes[rows, :width]))
    assert min_rows(codes, np.zeros(0, dtype=np.int64), probes, width=width, kernel=kernel).shape == (0,)


def test_min_rows_split_over_threads_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, (3000, 40), dtype=np.uint8)
    rows = rng.integers(0, 3000, 2500)
    probes = rng.integers(0, 256, (11, 40), dtype=np.uint8)
    one = min_rows(codes, rows, probes, threads=1)
    monkeypatch.setattr(kernels_module, "_MIN_PARALLEL_ROWS", 100)
    assert np.array_equal(min_rows(codes, rows, probes, threads=2), one)


def test_lane_codes_rows_move_and_clear() -> None:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (21, 24), dtype=np.uint8)
    lanes = _lane_codes(codes)
    assert lanes.capacity == 24 and lanes.nbytes == 24 * 24
    assert all(np.array_equal(lanes.row(i), codes[i]) for i in range(21))
    lanes.move_row(20, 3)
    lanes.clear_row(20)
    assert np.array_equal(lanes.row(3), codes[20]) and not lanes.row(20).any()
    lanes.reserve(100, used=20)  # growing keeps the rows in use
    assert lanes.capacity >= 100
    assert np.array_equal(lanes.row(3), codes[20]) and np.array_equal(lanes.row(19), codes[19])
    with pytest.raises(ValueError):
        lanes.set_rows(0, codes[:, :16])
    with pytest.raises(ValueError):
        lanes.set_rows(lanes.capacity, codes[:1])
    with pytest.raises(ValueError):
        LaneCodes(words=0)


def test_bad_sizes_are_refused_before_any_memory_is_read() -> None:
    rng = np.random.default_rng(6)
    codes = rng.integers(0, 256, (64, 16), dtype=np.uint8)
    lanes = _lane_codes(codes)
    good = rng.integers(0, 256, (3, 16), dtype=np.uint8)
    for bad in (good[:, :8], good.astype(np.int16), np.zeros((0, 16), dtype=np.uint8)):
        with pytest.raises(ValueError):
            scan_min(lanes, 64, bad)
    with pytest.raises(ValueError):
        scan_min(lanes, lanes.capacity + 1, good)
    with pytest.raises(ValueError):
        scan_min(lanes, 64, good, words=3)
    with pytest.raises(ValueError):
        min_rows(codes, np.array([0, 64]), good)  # row out of range, refused by the native code
    with pytest.raises(ValueError):
        min_rows(codes, np.array([0]), good, width=17)
    with pytest.raises(ValueError):
        min_rows(codes, np.array([0]), good, kernel="gpu")  # type: ignore[arg-type]
    # the native functions check buffer sizes themselves too
    out = np.empty(8, dtype=np.uint16)
    hist = np.zeros(64 * 2 + 1, dtype=np.uint32)
    with pytest.raises(ValueError):
        _kernels.scan_min(lanes.data, 2, 0, 100, 2, good, 3, out, 64, hist, 0)
    with pytest.raises(ValueError):
        _kernels.select_rows(np.zeros(10, dtype=np.uint16), 11, 0, 0, np.empty(10, dtype=np.int64), 0)
    with pytest.raises(ValueError):  # more rows selected than the output holds
        _kernels.select_rows(np.zeros(10, dtype=np.uint16), 10, 1, 0, np.empty(4, dtype=np.int64), 1)


def test_split_rows_covers_every_row_once() -> None:
    assert split_rows(10, 2, minimum=100) == [slice(0, 10)]
    parts = split_rows(1_000_001, 2, minimum=1000)
    assert len(parts) == 2
    assert parts[0].start == 0 and parts[-1].stop == 1_000_001
    assert parts[0].stop == parts[1].start
    assert split_rows(0, 4, minimum=1) == [slice(0, 0)]


@pytest.mark.parametrize("use_aligned", [False, True])
def test_split_searches_give_the_same_results_as_one_thread(
    matcher: Any, aligned_matcher: Any, toys: Any, monkeypatch: pytest.MonkeyPatch, use_aligned: bool
) -> None:
    chosen = aligned_matcher if use_aligned else matcher
    gallery = [(f"s{i:04d}", toys.random()) for i in range(1500)]
    probes = [toys.noisy(t, shift=1 if use_aligned else 0) for _, t in gallery[:25]] + [toys.random() for _ in range(5)]
    profile = SearchProfile(rerank_k=8, prefilter_k=1500 if use_aligned else 200, aligned_prefilter_k=50)
    single = FastIndex(matcher=chosen, profile=profile, scan_threads=1)
    single.add_many(gallery)
    want = [single.search(p, k=3) for p in probes]
    monkeypatch.setattr(kernels_module, "_MIN_PARALLEL_GROUPS", 8)  # split even this small gallery
    monkeypatch.setattr(kernels_module, "_MIN_PARALLEL_ROWS", 16)
    split = FastIndex(matcher=chosen, profile=profile, scan_threads=2)
    split.add_many(gallery)
    assert [split.search(p, k=3) for p in probes] == want
    assert [hits[0].subject_id for hits in want[:25]] == [sid for sid, _ in gallery[:25]]
    assert LANES == 8
