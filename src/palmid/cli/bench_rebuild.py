"""``palmid bench rebuild``: the service's start-up index rebuild from a real encrypted store of N palms."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from palmid.cli.common import fail
from palmid.errors import PalmidError

__all__ = ["bench_rebuild"]


def bench_rebuild(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Benchmark data dir (created; kept and topped up by later runs).")
    ],
    gallery: Annotated[int, typer.Option("--gallery", min=1, help="Enrolled palms in the store (N).")] = 20_000,
    database_url: Annotated[
        str | None, typer.Option(help="Main database (default: SQLite in the data dir); e.g. postgresql+psycopg://...")
    ] = None,
    templates: Annotated[
        str, typer.Option(help="'mosaic' (distractors made from real Tongji palms) or 'random' (uniform bits).")
    ] = "mosaic",
    dataset: Annotated[
        Path | None, typer.Option(help="Real palms for mosaic templates (default: <shared data>/tongji).")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Where real-palm templates are cached (default: ~/.cache/palmid).")
    ] = None,
    samples: Annotated[int, typer.Option(min=1, max=10, help="Samples (images) per enrolled palm.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the templates.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Fill a store with N enrolled palms (bulk), then time the start-up rebuild exactly as the service runs it."""
    from palmid.service.rebuild_bench import RebuildBenchOptions, run_rebuild_benchmark

    kind: Literal["mosaic", "random"]
    if templates == "mosaic":
        kind = "mosaic"
    elif templates == "random":
        kind = "random"
    else:
        fail("--templates must be 'mosaic' or 'random'")
    dataset_dir = None
    if kind == "mosaic":
        shared = os.environ.get("PALMID_SHARED_DATA_DIR")
        dataset_dir = (dataset or (Path(shared) if shared else Path("../shared/data")) / "tongji").resolve()
        if not (dataset_dir / "manifest.csv").is_file():
            fail(f"no manifest.csv in {dataset_dir} (pass --dataset, set PALMID_SHARED_DATA_DIR or --templates random)")
    xdg = os.environ.get("XDG_CACHE_HOME")
    options = RebuildBenchOptions(
        gallery=gallery,
        data_dir=data_dir.expanduser().resolve(),
        database_url=database_url,
        templates=kind,
        dataset_dir=dataset_dir,
        cache_dir=(cache_dir or (Path(xdg) if xdg else Path.home() / ".cache") / "palmid").expanduser(),
        samples=samples,
        seed=seed,
    )

    def log(message: str) -> None:
        typer.echo(f"[bench rebuild] {message}", err=True)

    try:
        result = run_rebuild_benchmark(options, log=log)
    except PalmidError as exc:
        fail(exc)
    if as_json:
        typer.echo(result.to_json())
        return
    for key, value in result.__dict__.items():
        typer.echo(f"{key:16s} {value}")
