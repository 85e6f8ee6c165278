"""Exact and fast indexes: agreement, erasure, add after remove, empty gallery, bad input."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from palmid.errors import ConflictError, ValidationFailed
from palmid.index.exact import ExactIndex
from palmid.index.fast import FastIndex


def _gallery(toys: Any, n: int) -> list[tuple[str, Any]]:
    return [(f"s{i:05d}", toys.random()) for i in range(n)]


@pytest.mark.parametrize("head_bytes", [None, 16])
def test_fast_and_exact_agree_on_small_gallery(matcher: Any, toys: Any, head_bytes: int | None) -> None:
    gallery = _gallery(toys, 600)
    exact = ExactIndex(matcher=matcher)
    fast = FastIndex(matcher=matcher, rerank_k=32, head_bytes=head_bytes, prefilter_k=256)
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
    fast = FastIndex(matcher=matcher, rerank_k=100, head_bytes=8, prefilter_k=100)
    exact.add_many(gallery)
    fast.add_many(gallery)
    for _ in range(20):
        probe = toys.noisy(toys.random(), shift=1)
        assert fast.search(probe, k=5) == exact.search(probe, k=5)


def test_search_returns_k_hits_best_first(matcher: Any, toys: Any) -> None:
    fast = FastIndex(matcher=matcher, rerank_k=8)
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
    index: Any = ExactIndex(matcher=matcher) if kind == "exact" else FastIndex(matcher=matcher, rerank_k=4)
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
    index = FastIndex(matcher=matcher, rerank_k=16)
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
    with pytest.raises(ValidationFailed):
        FastIndex(matcher=matcher, head_bytes=0)
    with pytest.raises(ValidationFailed):
        FastIndex(matcher=matcher, rerank_k=64, prefilter_k=8)
    assert np.__version__  # numpy present (bitwise_count needs numpy >= 2)


def test_coarse_neighbours_and_candidates_are_exact_hamming(matcher: Any, toys: Any) -> None:
    gallery = _gallery(toys, 500)
    index = FastIndex(matcher=matcher, rerank_k=10, head_bytes=8, prefilter_k=500)
    index.add_many(gallery)
    probe = toys.random()
    code = matcher.coarse_code(probe)
    distance = {sid: int(np.bitwise_count(matcher.coarse_code(t) ^ code).sum()) for sid, t in gallery}
    ranked = sorted(distance, key=lambda sid: (distance[sid], sid))
    neighbours = index.coarse_neighbours(probe, k=10)
    assert [distance[sid] for sid in neighbours] == [distance[sid] for sid in ranked[:10]]
    # with a prefilter as large as the gallery, the candidates are the 10 nearest by the whole code too
    assert sorted(distance[sid] for sid in index.candidates(probe)) == [distance[sid] for sid in ranked[:10]]
