"""The 1:N search benchmark behind ``palmid bench search``.

Protocol (real palms of one dataset, e.g. Tongji, split by palm with a fixed seed into three disjoint thirds):

- *enrolled*: one template per palm from its first ``enroll_samples`` first-session images; its second-session
  images are the **mated** searches;
- *outsiders*: never enrolled; all their images (both sessions) are the **non-mated** searches (false positives);
- *pool*: the source of the mosaic distractors (:class:`~palmid.index.gallery.MosaicDistractors`) that fill the
  gallery up to ``gallery`` palms, each with ``enroll_samples`` samples like a real enrollment.

Figures: build time (``add_many`` only, generation excluded), memory of the index per palm, single and batched
query latency, recall of the exhaustive top-1 on mated searches, FNIR/FPIR of the decision rule, and the
distractors' realism (:mod:`palmid.index.realism`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from palmid.errors import ConfigError
from palmid.evaluation.process_memory import release_free_memory, rss_bytes
from palmid.index.base import SearchHit
from palmid.index.benchdata import BenchSplit, BenchTemplates, split_palms
from palmid.index.decision import IdentificationPolicy, identification_threshold
from palmid.index.engine import EngineMatcher, engine_threshold
from palmid.index.fast import FastIndex
from palmid.index.kernels import best_kernel
from palmid.index.profiles import DEFAULT_ALIGNED_PREFILTER_K, DEFAULT_PREFILTER_K, DEFAULT_RERANK_K, SearchProfile
from palmid.index.realism import RealismReport, compare_realism
from palmid.templates.template import Template

__all__ = ["SearchBenchOptions", "SearchBenchResult", "run_search_benchmark"]

_CHUNK = 4096
_BATCH = 32


@dataclass(frozen=True, kw_only=True)
class SearchBenchOptions:
    gallery: int
    dataset_dir: Path
    cache_dir: Path
    queries: int | None = None
    enroll_samples: int = 3
    rerank_k: int = DEFAULT_RERANK_K
    scan_words: int | None = None
    """Scan-code words compared with every palm (``None``: all of them)."""
    dense_scan: bool = False
    """Search every shift in the scan (25) instead of the quincunx (13)."""
    prefilter_k: int = DEFAULT_PREFILTER_K
    aligned_prefilter_k: int = DEFAULT_ALIGNED_PREFILTER_K
    fpir: float = 1e-3
    max_fmr: float = 1e-6
    exact_limit: int = 5000
    recall_queries: int = 100
    reference_k: int = 2000
    seed: int = 0
    workers: int = 1


@dataclass(frozen=True, kw_only=True)
class SearchBenchResult:
    gallery: int
    real_enrolled: int
    distractors: int
    build_s: float
    build_cpu_s: float
    build_per_s: float
    bytes_per_palm: float
    rss_bytes_per_palm: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_p50_ms: float
    """CPU time of one search summed over the process's threads (the head scan is split over two)."""
    cpu_p95_ms: float
    batch_p50_ms: float
    batch_p95_ms: float
    batch_p99_ms: float
    recall_top1: float
    scan_kept: float
    """Mated searches whose mate the scan kept (ranked below ``prefilter_k``), over the recall searches."""
    scan_mate_rank_p99: float
    scan_mate_rank_max: int
    """How many palms the scan ranked before the mate (99th percentile and worst, over the recall searches)."""
    recall_reference: str
    recall_queries: int
    mated_rank1: float
    fnir_at_fpir: float | None
    fpir_target: float
    fpir_measured: float | None
    threshold: float | None
    fmr: float
    fnir_mate_below_threshold: float | None
    """Mated searches whose true mate scores below the threshold in full: FNIR floor of ANY search strategy."""
    fnir_at_fpir_empirical: float
    threshold_empirical: float
    n_mated: int
    n_nonmated: int
    fta: float
    rerank_k: int
    scan_words: int
    dense_scan: bool
    kernel: str
    """The Hamming kernel that ran: ``avx512``, ``popcnt`` or ``portable``."""
    prefilter_k: int
    aligned_prefilter_k: int
    enroll_samples: int
    realism: RealismReport | None


def run_search_benchmark(options: SearchBenchOptions, *, log: Callable[[str], None]) -> SearchBenchResult:
    """Build the gallery, run the searches, measure (see module docstring)."""
    split = split_palms(options, log=log)
    matcher = EngineMatcher()
    source = BenchTemplates(split.distractors)
    n_real = min(options.gallery, len(split.enrolled))
    n_distractors = options.gallery - n_real
    profile = SearchProfile(
        scan_words=options.scan_words,
        dense_scan=options.dense_scan,
        prefilter_k=options.prefilter_k,
        aligned_prefilter_k=options.aligned_prefilter_k,
        rerank_k=options.rerank_k,
    )
    index: FastIndex[Template] = FastIndex(matcher=matcher, templates=source, profile=profile)
    release_free_memory()
    rss_before = rss_bytes()
    build_s, build_cpu_s = _build(index, split, n_real=n_real, n_distractors=n_distractors, log=log)
    rss_after = rss_bytes()
    mated = [(pid, t) for pid, t in split.mated if pid in index][: options.queries]
    nonmated = split.nonmated[: options.queries]
    probes = [t for _, t in mated] + [t for _, t in nonmated]
    acquired = [t for t in probes if t is not None]
    log(f"searching {len(acquired)} probes ({len(mated)} mated, {len(nonmated)} non-mated)")
    for probe in acquired[:5]:
        index.search(probe, k=2)  # warm-up
    latencies_ms: list[float] = []
    cpu_ms: list[float] = []
    hits_of: dict[int, list[SearchHit]] = {}
    for probe in acquired:
        started, started_cpu = time.perf_counter(), time.process_time()  # process: the scan threads count too
        hits_of[id(probe)] = index.search(probe, k=2)
        latencies_ms.append((time.perf_counter() - started) * 1e3)
        cpu_ms.append((time.process_time() - started_cpu) * 1e3)
    batch_ms: list[float] = []
    batch_probes = acquired[: max(_BATCH, min(len(acquired), 512))]
    for start in range(0, len(batch_probes) - _BATCH + 1, _BATCH):
        started = time.perf_counter()
        index.search_many(batch_probes[start : start + _BATCH], k=2)
        batch_ms.append((time.perf_counter() - started) * 1e3 / _BATCH)
    recall, reference, recall_n = _recall(index, matcher, source, mated, hits_of, options, log=log)
    scan_ranks = np.array(
        [index.scan_rank(t, pid) for pid, t in mated[: options.recall_queries] if t is not None], dtype=np.int64
    )
    if not scan_ranks.size:
        scan_ranks = np.zeros(1, dtype=np.int64)
    policy = IdentificationPolicy(fpir=options.fpir, max_fmr=options.max_fmr)
    threshold: float | None
    try:
        threshold, fmr = identification_threshold(
            policy=policy,
            gallery_size=len(index),
            threshold_for_fmr=engine_threshold(n_sample_pairs=options.enroll_samples),
        )
    except (ImportError, ConfigError) as exc:
        threshold, fmr = None, policy.max_fmr
        log(f"engine calibration unavailable ({exc}): no decision-rule FNIR")
    mated_top = [(pid, _top(hits_of, t)) for pid, t in mated]
    nonmated_top = np.array([_top(hits_of, t).similarity for _, t in nonmated], dtype=np.float64)
    fnir, fpir_measured = (None, None)
    if threshold is not None:
        fnir = _fnir(mated_top, threshold)
        fpir_measured = float((nonmated_top >= threshold).mean()) if nonmated_top.size else None
    threshold_emp = _empirical_threshold(nonmated_top, options.fpir)
    mate_scores = _mate_scores(matcher, source, mated)
    floor = float((mate_scores < threshold).mean()) if threshold is not None and mate_scores.size else None
    realism = _realism(matcher, split, n_real, log=log) if n_distractors else None
    n_palms = len(index)
    lat = np.asarray(latencies_ms) if latencies_ms else np.zeros(1)
    cpu = np.asarray(cpu_ms) if cpu_ms else np.zeros(1)
    bat = np.asarray(batch_ms) if batch_ms else np.full(1, np.nan)
    return SearchBenchResult(
        gallery=n_palms,
        real_enrolled=n_real,
        distractors=n_distractors,
        build_s=build_s,
        build_cpu_s=build_cpu_s,
        build_per_s=n_palms / build_s if build_s > 0 else 0.0,
        bytes_per_palm=index.nbytes(include_templates=False) / max(1, n_palms),
        rss_bytes_per_palm=(rss_after - rss_before) / max(1, n_palms),
        p50_ms=float(np.percentile(lat, 50)),
        p95_ms=float(np.percentile(lat, 95)),
        p99_ms=float(np.percentile(lat, 99)),
        cpu_p50_ms=float(np.percentile(cpu, 50)),
        cpu_p95_ms=float(np.percentile(cpu, 95)),
        batch_p50_ms=float(np.percentile(bat, 50)),
        batch_p95_ms=float(np.percentile(bat, 95)),
        batch_p99_ms=float(np.percentile(bat, 99)),
        recall_top1=recall,
        scan_kept=float((scan_ranks < index.profile.prefilter_k).mean()),
        scan_mate_rank_p99=float(np.percentile(scan_ranks, 99)),
        scan_mate_rank_max=int(scan_ranks.max()),
        recall_reference=reference,
        recall_queries=recall_n,
        mated_rank1=float(np.mean([hit.subject_id == pid for pid, hit in mated_top])) if mated_top else 0.0,
        fnir_at_fpir=fnir,
        fpir_target=options.fpir,
        fpir_measured=fpir_measured,
        threshold=threshold,
        fmr=fmr,
        fnir_mate_below_threshold=floor,
        fnir_at_fpir_empirical=_fnir(mated_top, threshold_emp),
        threshold_empirical=threshold_emp,
        n_mated=len(mated),
        n_nonmated=len(nonmated),
        fta=(len(probes) - len(acquired)) / max(1, len(probes)),
        rerank_k=options.rerank_k,
        scan_words=index.profile.scan_words or matcher.scan_bytes // 8,
        dense_scan=options.dense_scan,
        kernel=best_kernel(),
        prefilter_k=options.prefilter_k,
        aligned_prefilter_k=options.aligned_prefilter_k,
        enroll_samples=options.enroll_samples,
        realism=realism,
    )


_MISSING = SearchHit(subject_id="", similarity=0.0)


def _top(hits_of: dict[int, list[SearchHit]], probe: Template | None) -> SearchHit:
    """Best hit of a probe; a failure to acquire or an empty result is the lowest similarity."""
    if probe is None:
        return _MISSING
    hits = hits_of.get(id(probe)) or [_MISSING]
    return hits[0]


def _fnir(mated_top: Sequence[tuple[str, SearchHit]], threshold: float) -> float:
    if not mated_top:
        return 0.0
    misses = sum(hit.subject_id != pid or hit.similarity < threshold for pid, hit in mated_top)
    return misses / len(mated_top)


def _mate_scores(
    matcher: EngineMatcher, source: BenchTemplates, mated: Sequence[tuple[str, Template | None]]
) -> np.typing.NDArray[np.float64]:
    """Full similarity of every mated search with its own enrolled template (0 for a failure to acquire)."""
    scores = np.zeros(len(mated), dtype=np.float64)
    for i, (pid, probe) in enumerate(mated):
        enrolled = source.get_many([pid])[0]
        if probe is not None and enrolled is not None:
            scores[i] = matcher.compare(probe, enrolled)
    return scores


def _empirical_threshold(nonmated_top: np.typing.NDArray[np.float64], fpir: float) -> float:
    """Lowest threshold at which at most ``fpir`` of the non-mated searches return a match."""
    if nonmated_top.size == 0:
        return 0.0
    allowed = int(np.floor(fpir * nonmated_top.size))
    ordered = np.sort(nonmated_top)[::-1]
    if allowed >= ordered.size:
        return 0.0
    return float(np.nextafter(ordered[allowed], np.inf))


def _build(
    index: FastIndex[Template], split: BenchSplit, *, n_real: int, n_distractors: int, log: Callable[[str], None]
) -> tuple[float, float]:
    """Rebuild as at service start: template bytes (as decrypted from the store) -> ``Template.from_bytes`` ->
    ``add_many``, in chunks. Only parsing and ``add_many`` are timed (distractor generation and serialisation are
    not; store decryption is not part of the index). Returns (wall, CPU) seconds."""
    index.add_many([], expected=n_real + n_distractors)
    started, started_cpu = time.perf_counter(), time.thread_time()
    index.add_many(split.enrolled[:n_real])
    build_s, build_cpu_s = time.perf_counter() - started, time.thread_time() - started_cpu
    last_log = time.perf_counter()
    items: list[tuple[str, Template]] = []
    blobs: list[bytes] = []
    for start in range(0, n_distractors, _CHUNK):
        numbers = np.arange(start, min(n_distractors, start + _CHUNK), dtype=np.int64)
        blobs = [t.to_bytes() for t in split.distractors.templates(numbers)]
        started, started_cpu = time.perf_counter(), time.thread_time()
        items = [(f"d:{n}", Template.from_bytes(blob)) for n, blob in zip(numbers.tolist(), blobs, strict=True)]
        index.add_many(items)
        build_s += time.perf_counter() - started
        build_cpu_s += time.thread_time() - started_cpu
        if time.perf_counter() - last_log > 30:
            last_log = time.perf_counter()
            log(f"built {len(index):,} / {n_real + n_distractors:,} palms ({build_s:.1f} s in add_many)")
    del items, blobs
    release_free_memory()
    return build_s, build_cpu_s


def _recall(
    index: FastIndex[Template],
    matcher: EngineMatcher,
    source: BenchTemplates,
    mated: Sequence[tuple[str, Template | None]],
    hits_of: dict[int, list[SearchHit]],
    options: SearchBenchOptions,
    *,
    log: Callable[[str], None],
) -> tuple[float, str, int]:
    """Fraction of mated searches whose fast top-1 is the exhaustive top-1 of the full comparison.

    Up to ``exact_limit`` palms the reference compares each probe with every palm. Beyond, the reference is the
    full comparison over the probe's mate, the fast index's candidates and the ``reference_k`` nearest palms by an
    EXHAUSTIVE comparison of the last code stage's distance (:meth:`FastIndex.reference_neighbours`: the shift- and
    rotation-searched aligned code), i.e. what the scan could have missed.
    """
    sample = [(pid, t) for pid, t in mated if t is not None][: options.recall_queries]
    if not sample:
        return 0.0, "none", 0
    exhaustive = len(index) <= options.exact_limit
    everyone = list(source.enrolled_ids(len(index))) if exhaustive else []
    agree = 0
    for pid, probe in sample:
        if exhaustive:
            ids = everyone
        else:
            ids = sorted({pid, *index.candidates(probe), *index.reference_neighbours(probe, k=options.reference_k)})
        templates = source.get_many(ids)
        present = [(i, t) for i, t in zip(ids, templates, strict=True) if t is not None]
        similarities = np.concatenate(
            [np.zeros(0)]
            + [matcher.compare_many(probe, [t for _, t in present[i : i + 512]]) for i in range(0, len(present), 512)]
        )
        order = sorted(range(len(present)), key=lambda j: (-float(similarities[j]), present[j][0]))
        reference_top = present[order[0]][0] if order else ""
        agree += reference_top == _top(hits_of, probe).subject_id
    label = "exhaustive_full" if exhaustive else f"full_over_mate+candidates+rotated_aligned_top{options.reference_k}"
    log(f"recall reference: {label} on {len(sample)} mated searches")
    return agree / len(sample), label, len(sample)


def _realism(matcher: EngineMatcher, split: BenchSplit, n_real: int, *, log: Callable[[str], None]) -> RealismReport:
    log("comparing distractor statistics with real palms")
    real = [t for _, t in split.enrolled[:n_real]]
    distractors = split.distractors.templates(np.arange(2000, dtype=np.int64))
    probes = [t for _, t in split.nonmated if t is not None][:500]
    return compare_realism(matcher=matcher, real=real, distractors=distractors, probes=probes)
