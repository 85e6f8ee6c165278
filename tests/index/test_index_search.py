"""Exact and fast indexes: agreement, erasure, add after remove, empty gallery, bad input."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from palmid.errors import ConflictError, ValidationFailed
from palmid.index.exact import ExactIndex
from palmid.index.fast import FastIndex
from palmid.index.profiles import SearchProfile


def _fast(matcher: Any, *, scan_threads: int | None = None, **profile: Any) -> FastIndex[Any]:
    return FastIndex(matcher=matcher, profile=SearchProfile(**profile), scan_threads=scan_threads)


def _gallery(toys: Any, n: int) -> list[tuple[str, Any]]:
    return [(f"s{i:05d}", toys.random()) for i in range(n)]


@pytest.mark.parametrize("scan_words", [None, 2])
def test_fast_and_exact_agree_on_small_gallery(matcher: Any, toys: Any, scan_words: int | None) -> None:
    gallery = _gallery(toys, 600)
    exact = ExactIndex(matcher=matcher)
    fast = _fast(matcher, rerank_k=32, scan_words=scan_words, prefilter_k=256)
    exact.add_many(gallery)
    assert fast.add_many(gallery) == 600
    # mated probes (noisy copies) and non-mated probes
    probes = [toys.noisy(t) for _, t in gallery[:60]]
    for probe in probes:
        want = exact.search(probe, k=1)[0]
        got = fast.search(probe, k=1)[0]
        assert got.subject_id == want.subject_id
        assert got.similarity == pytest.approx(want.similarity)
    batched = fast.search_many(probes, k=1)
    assert [hits[0].subject_id for hits in batched] == [sid for sid, _ in gallery[:60]]
    # non-mated probes: the fast index reports true full similarities, never better than the exhaustive best
    for _ in range(10):
        probe = toys.random()
        best = exact.search(probe, k=1)[0]
        for hit in fast.search(probe, k=3):
            assert hit.similarity <= best.similarity + 1e-12
            assert hit.similarity == pytest.approx(matcher.compare(probe, dict(gallery)[hit.subject_id]))


def test_fast_is_exact_when_every_palm_is_reranked(matcher: Any, toys: Any) -> None:
    gallery = _gallery(toys, 100)
    exact = ExactIndex(matcher=matcher)
    fast = _fast(matcher, rerank_k=100, scan_words=1, prefilter_k=100)
    exact.add_many(gallery)
    fast.add_many(gallery)
    for _ in range(20):
        probe = toys.noisy(toys.random(), shift=1)
        assert fast.search(probe, k=5) == exact.search(probe, k=5)


def test_dense_scan_finds_shifted_captures_the_sparse_scan_misses(matcher: Any, toys: Any) -> None:
    gallery = _gallery(toys, 3000)
    sparse = _fast(matcher, rerank_k=4, prefilter_k=4)
    dense = _fast(matcher, rerank_k=4, prefilter_k=4, dense_scan=True)
    sparse.add_many(gallery)
    dense.add_many(gallery)
    found_sparse = found_dense = 0
    for subject_id, template in gallery[:40]:
        probe = toys.noisy(template, flip=0.1, shift=1)  # a one-byte shift: only the rolled scan codes match it
        found_sparse += sparse.search(probe, k=1)[0].subject_id == subject_id
        found_dense += dense.search(probe, k=1)[0].subject_id == subject_id
    assert found_dense == 40
    assert found_sparse < 10


def test_search_returns_k_hits_best_first(matcher: Any, toys: Any) -> None:
    fast = _fast(matcher, rerank_k=8)
    fast.add_many(_gallery(toys, 50))
    hits = fast.search(toys.random(), k=5)
    assert len(hits) == 5
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    assert len(fast.search(toys.random(), k=20)) == 8  # never more than the reranked candidates


@pytest.mark.parametrize("kind", ["exact", "fast"])
def test_empty_gallery(matcher: Any, toys: Any, kind: str) -> None:
    index: Any = ExactIndex(matcher=matcher) if kind == "exact" else FastIndex(matcher=matcher)
    assert len(index) == 0
    assert index.search(toys.random(), k=3) == []
    assert index.search_many([toys.random(), toys.random()], k=1) == [[], []]
    assert index.remove("nobody") is False


@pytest.mark.parametrize("kind", ["exact", "fast"])
def test_remove_is_immediate_and_add_after_remove(matcher: Any, toys: Any, kind: str) -> None:
    index: Any = ExactIndex(matcher=matcher) if kind == "exact" else _fast(matcher, rerank_k=4)
    gallery = _gallery(toys, 40)
    index.add_many(gallery)
    victim_id, victim = gallery[7]
    assert index.search(victim, k=1)[0].subject_id == victim_id
    assert index.remove(victim_id) is True
    assert victim_id not in index
    assert len(index) == 39
    assert all(h.subject_id != victim_id for h in index.search(victim, k=40))
    assert index.remove(victim_id) is False
    # every other palm is still found after the removal moved rows around
    for subject_id, template in gallery:
        if subject_id != victim_id:
            assert index.search(template, k=1)[0].subject_id == subject_id
    # the same id can be enrolled again, with a new palm
    other = toys.random()
    index.add(victim_id, other)
    assert index.search(other, k=1)[0].subject_id == victim_id
    # remove everything, then the index is empty and still usable
    for subject_id in [sid for sid, _ in gallery]:
        index.remove(subject_id)
    assert len(index) == 0
    assert index.search(other, k=1) == []


@pytest.mark.parametrize("kind", ["exact", "fast"])
def test_duplicate_ids_refused(matcher: Any, toys: Any, kind: str) -> None:
    index: Any = ExactIndex(matcher=matcher) if kind == "exact" else FastIndex(matcher=matcher)
    index.add("a", toys.random())
    with pytest.raises(ConflictError) as err:
        index.add("a", toys.random())
    assert err.value.code == "already_indexed"
    with pytest.raises(ConflictError):
        index.add_many([("b", toys.random()), ("b", toys.random())])
    assert "b" not in index
    with pytest.raises(ValidationFailed):
        index.add("", toys.random())
    with pytest.raises(ValidationFailed):
        index.search(toys.random(), k=0)


def test_removed_id_never_returned_under_concurrent_search(matcher: Any, toys: Any) -> None:
    gallery = _gallery(toys, 300)
    index = _fast(matcher, rerank_k=16)
    index.add_many(gallery)
    probes = [t for _, t in gallery]
    removed: set[str] = set()
    violations: list[str] = []
    stop = threading.Event()

    def searcher(offset: int) -> None:
        i = offset
        while not stop.is_set():
            snapshot = set(removed)  # ids whose remove() had returned before this search started
            for hit in index.search(probes[i % len(probes)], k=16):
                if hit.subject_id in snapshot:
                    violations.append(hit.subject_id)
            i += 7

    threads = [threading.Thread(target=searcher, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        for subject_id, _ in gallery[:150]:
            assert index.remove(subject_id)
            removed.add(subject_id)
        for n in range(50):  # adds interleaved with searches too
            index.add(f"new{n}", toys.random())
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert violations == []
    assert len(index) == 200
    for subject_id, template in gallery[150:]:
        assert index.search(template, k=1)[0].subject_id == subject_id


def test_nbytes_counts_codes(matcher: Any, toys: Any) -> None:
    index = FastIndex(matcher=matcher)
    index.add_many(_gallery(toys, 2000), expected=2000)
    codes_only = index.nbytes(include_templates=False)
    assert 2000 * 64 <= codes_only < 2000 * 400
    assert index.nbytes() > codes_only


def test_bad_options_refused(matcher: Any) -> None:
    for profile in (
        {"scan_words": 0},
        {"scan_words": 9},  # the toy scan code has 8 words
        {"rerank_k": 64, "prefilter_k": 8},
        {"rerank_k": 64, "aligned_prefilter_k": 8},
        {"rerank_k": 0},
    ):
        with pytest.raises(ValidationFailed) as err:
            _fast(matcher, **profile)
        assert err.value.code == "invalid_index_options"
    with pytest.raises(ValidationFailed):
        _fast(matcher, scan_threads=0)


class _OddScanMatcher:
    """A matcher whose scan code is not whole 64-bit words."""

    code_bytes = 12
    scan_bytes = 12
    aligned_bytes = 0
    aligned_head_bytes = 0


def test_matcher_without_whole_scan_words_refused() -> None:
    with pytest.raises(ValidationFailed):
        FastIndex(matcher=_OddScanMatcher())  # type: ignore[arg-type]


def test_probe_codes_of_the_wrong_width_refused(matcher: Any, toys: Any) -> None:
    index = _fast(matcher)
    index.add_many(_gallery(toys, 10))

    class Broken(type(matcher)):  # type: ignore[misc]
        def scan_probe_codes(self, template: Any, *, dense: bool = False) -> np.ndarray:
            return np.zeros((1, 8), dtype=np.uint8)

    broken = _fast(Broken())
    broken.add_many(_gallery(toys, 10))
    with pytest.raises(ValidationFailed) as err:
        broken.search(toys.random())
    assert err.value.code == "invalid_template"


def test_reference_neighbours_and_candidates_are_exact_hamming(matcher: Any, toys: Any) -> None:
    gallery = _gallery(toys, 500)
    index = _fast(matcher, rerank_k=10, prefilter_k=500)
    index.add_many(gallery)
    probe = toys.random()
    code = matcher.index_code(probe)
    distance = {sid: int(np.bitwise_count(matcher.index_code(t) ^ code).sum()) for sid, t in gallery}
    ranked = sorted(distance, key=lambda sid: (distance[sid], sid))
    # the candidates: the 10 nearest by the scan code (the probe's one sparse code), best first
    assert [distance[sid] for sid in index.candidates(probe)] == [distance[sid] for sid in ranked[:10]]
    # the reference: every palm against the probe's dense (rolled) scan codes
    dense = matcher.scan_probe_codes(probe, dense=True)
    rolled = {
        sid: min(int(np.bitwise_count(matcher.index_code(t) ^ c).sum()) for c in dense) for sid, t in gallery
    }
    best = sorted(rolled.values())[:10]
    assert [rolled[sid] for sid in index.reference_neighbours(probe, k=10)] == best
    # the scan rank of a palm: how many palms the scan puts strictly before it
    for sid, _ in gallery[:20]:
        assert index.scan_rank(probe, sid) == sum(d < distance[sid] for d in distance.values())
    with pytest.raises(ValidationFailed):
        index.scan_rank(probe, "nobody")
