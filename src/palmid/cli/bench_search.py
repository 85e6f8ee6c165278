"""``palmid bench search``: 1:N identification at N enrolled palms (build, memory, latency, recall, FNIR/FPIR)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Annotated

import typer

from palmid.cli.common import fail
from palmid.errors import PalmidError

__all__ = ["bench_search"]


def _default_dataset() -> Path:
    configured = os.environ.get("PALMID_SHARED_DATA_DIR")
    return (Path(configured) if configured else Path("../shared/data")) / "tongji"


def _default_cache() -> Path:
    configured = os.environ.get("XDG_CACHE_HOME")
    return (Path(configured) if configured else Path.home() / ".cache") / "palmid"


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def bench_search(
    gallery: Annotated[int, typer.Option("--gallery", min=1, help="Enrolled palms in the gallery (N).")] = 10_000,
    queries: Annotated[
        int | None, typer.Option(min=1, help="Mated and non-mated searches each (default: all available).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    dataset: Annotated[
        Path | None, typer.Option(help="Real palms with two sessions (default: <shared data>/tongji).")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Where real-palm templates are cached (default: ~/.cache/palmid).")
    ] = None,
    enroll_samples: Annotated[int, typer.Option(min=1, max=10, help="Images per enrolled palm.")] = 3,
    profile: Annotated[
        str, typer.Option(help="Search profile the stage options start from: accurate or fast (the service's).")
    ] = "accurate",
    rerank_k: Annotated[int | None, typer.Option(min=1, help="Candidates compared in full per search.")] = None,
    scan_words: Annotated[
        int | None, typer.Option(min=1, help="Scan-code words (of 12) compared with every palm.")
    ] = None,
    dense_scan: Annotated[
        bool | None,
        typer.Option("--dense-scan/--sparse-scan", help="Search all 25 shifts in the scan, or the 13 of a quincunx."),
    ] = None,
    prefilter_k: Annotated[int | None, typer.Option(min=1, help="Shortlist kept by the scan.")] = None,
    aligned_prefilter_k: Annotated[
        int | None, typer.Option(min=1, help="Shortlist kept by the half aligned code before the whole one.")
    ] = None,
    fpir: Annotated[float, typer.Option(help="Target false-positive identification rate.")] = 1e-3,
    exact_limit: Annotated[
        int, typer.Option(help="Largest gallery whose recall reference compares every palm in full.")
    ] = 5000,
    recall_queries: Annotated[int, typer.Option(min=1, help="Mated searches checked for recall.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the palm split and of the distractors.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes for the first template extraction.")] = 1,
) -> None:
    """Build a gallery of N palms (real Tongji palms + realistic mosaic distractors) and measure 1:N search."""
    from palmid.index.benchmark import SearchBenchOptions, run_search_benchmark
    from palmid.index.profiles import SEARCH_PROFILES

    dataset_dir = (dataset or _default_dataset()).resolve()
    if not (dataset_dir / "manifest.csv").is_file():
        fail(f"no manifest.csv in {dataset_dir} (pass --dataset or set PALMID_SHARED_DATA_DIR)")
    if not 0 < fpir < 1:
        fail("--fpir must be in (0, 1)")
    base = SEARCH_PROFILES.get(profile)
    if base is None:
        fail(f"unknown --profile {profile!r} (known: {', '.join(sorted(SEARCH_PROFILES))})")
    chosen = dataclasses.replace(
        base,
        scan_words=base.scan_words if scan_words is None else scan_words,
        dense_scan=base.dense_scan if dense_scan is None else dense_scan,
        prefilter_k=base.prefilter_k if prefilter_k is None else prefilter_k,
        aligned_prefilter_k=base.aligned_prefilter_k if aligned_prefilter_k is None else aligned_prefilter_k,
        rerank_k=base.rerank_k if rerank_k is None else rerank_k,
    )
    if chosen.prefilter_k < chosen.rerank_k or chosen.aligned_prefilter_k < chosen.rerank_k:
        fail("--prefilter-k and --aligned-prefilter-k must be at least --rerank-k")
    options = SearchBenchOptions(
        gallery=gallery,
        dataset_dir=dataset_dir,
        cache_dir=(cache_dir or _default_cache()).expanduser(),
        queries=queries,
        enroll_samples=enroll_samples,
        rerank_k=chosen.rerank_k,
        scan_words=chosen.scan_words,
        dense_scan=chosen.dense_scan,
        prefilter_k=chosen.prefilter_k,
        aligned_prefilter_k=chosen.aligned_prefilter_k,
        fpir=fpir,
        exact_limit=exact_limit,
        recall_queries=recall_queries,
        seed=seed,
        workers=workers,
    )

    def log(message: str) -> None:
        typer.echo(f"[bench search] {message}", err=True)

    try:
        result = run_search_benchmark(options, log=log)
    except PalmidError as exc:
        fail(exc)
    record = _jsonable(dataclasses.asdict(result))
    if as_json:
        typer.echo(json.dumps(record, sort_keys=True))
        return
    if not isinstance(record, dict):  # pragma: no cover - asdict always returns a dict
        fail("internal error: benchmark result is not a record")
    for key, value in record.items():
        if isinstance(value, dict):
            typer.echo(f"{key}:")
            for sub_key, sub_value in value.items():
                typer.echo(f"  {sub_key:32s} {_fmt(sub_value)}")
        else:
            typer.echo(f"{key:34s} {_fmt(value)}")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)
