"""Images -> templates for evaluation, through :class:`palmid.pipeline.Pipeline`, on several processes.

A failure to acquire (no palm found, poor quality, unreadable image) yields ``None`` and its reason code; it
stays in the protocol with the lowest similarity. ``auto`` is the pipeline's documented policy (colour photos ->
landmarks; grey photos -> classical, then landmarks); the ROI method used for each image is recorded and reported.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from palmid.detect.palm import RoiMethod
from palmid.errors import InputError
from palmid.pipeline import Pipeline, PipelineOptions
from palmid.templates.template import Template

__all__ = ["Acquisition", "DetectorChoice", "acquire_templates"]

DetectorChoice = Literal["auto", "landmarks", "classical", "roi"]

_PIPELINE: Pipeline | None = None


@dataclass(frozen=True)
class Acquisition:
    """Per image (manifest order): template or ``None``, failure reason code, ROI method used."""

    templates: tuple[Template | None, ...]
    failure_codes: tuple[str | None, ...]
    methods: tuple[str | None, ...]
    elapsed_s: float

    @property
    def templates_per_s(self) -> float:
        return len(self.templates) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def fta(self) -> float:
        return sum(t is None for t in self.templates) / len(self.templates) if self.templates else 0.0


def _init_worker(extractor: str) -> None:
    global _PIPELINE
    import cv2

    cv2.setNumThreads(1)
    _PIPELINE = Pipeline(options=PipelineOptions(extractor=extractor))
    atexit.register(_close_worker)


def _close_worker() -> None:
    global _PIPELINE
    if _PIPELINE is not None:
        _PIPELINE.close()
        _PIPELINE = None


def _acquire_one(job: tuple[str, DetectorChoice]) -> tuple[bytes | None, str | None, str | None]:
    path, detector = job
    if _PIPELINE is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker not initialised")
    method: RoiMethod = detector
    try:
        acquired = _PIPELINE.acquire(Path(path).read_bytes(), detector=method)
    except InputError as exc:
        return None, exc.code, None
    return acquired.template.to_bytes(), None, acquired.roi_method


def acquire_templates(
    paths: Sequence[Path],
    *,
    detector: DetectorChoice,
    extractor: str,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Acquisition:
    """Templates for ``paths`` (in order); ``workers`` processes (default: all cores, 1 = in this process)."""
    n_workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    jobs = [(str(path), detector) for path in paths]
    started = time.perf_counter()
    results: list[tuple[bytes | None, str | None, str | None]] = []
    if n_workers == 1 or len(jobs) < 2 * n_workers:
        _init_worker(extractor)
        try:
            for job in jobs:
                results.append(_acquire_one(job))
                if on_progress:
                    on_progress(1)
        finally:
            _close_worker()
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(n_workers, initializer=_init_worker, initargs=(extractor,)) as pool:
            for result in pool.imap(_acquire_one, jobs, chunksize=8):
                results.append(result)
                if on_progress:
                    on_progress(1)
    elapsed = time.perf_counter() - started
    return Acquisition(
        templates=tuple(Template.from_bytes(blob) if blob is not None else None for blob, _, _ in results),
        failure_codes=tuple(code for _, code, _ in results),
        methods=tuple(method for _, _, method in results),
        elapsed_s=elapsed,
    )
