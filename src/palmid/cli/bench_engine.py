"""``palmid bench engine``: photo -> template, ROI -> template, coarse and full comparison speed (one core)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from palmid.cli.common import fail
from palmid.errors import PalmidError

__all__ = ["bench_engine"]


def _default_data_dir() -> Path:
    configured = os.environ.get("PALMID_SHARED_DATA_DIR")
    return Path(configured) if configured else Path("../shared/data")


def _timings_ms(action: Callable[[], object], *, repeats: int) -> tuple[float, float]:
    """p50 and p95 of the process CPU time of ``action`` in ms (all threads; fair on a shared machine)."""
    import numpy as np

    action()  # warm-up (model loading, caches)
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        action()
        samples.append((time.process_time() - started) * 1000)
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def _rate_per_s(action: Callable[[], object], count: int) -> float:
    started = time.process_time()
    action()
    return count / max(time.process_time() - started, 1e-9)


def bench_engine(
    photo: Annotated[Path | None, typer.Option(help="Whole-hand photo (default: a COEP photo).")] = None,
    roi_image: Annotated[Path | None, typer.Option("--roi", help="ROI image (default: a Tongji ROI).")] = None,
    repeats: Annotated[int, typer.Option(min=3, help="Timed repetitions per figure.")] = 30,
    gallery_size: Annotated[int, typer.Option(min=1000, help="Scan codes compared per query.")] = 1_000_000,
) -> None:
    """Print engine speed figures as CPU time (one core): p50/p95 latencies and comparisons per second."""
    import cv2
    import faiss
    import numpy as np

    from palmid.detect.palm import PalmROI
    from palmid.index.engine import EngineMatcher
    from palmid.index.kernels import LaneCodes, best_kernel, scan_min
    from palmid.pipeline import Pipeline
    from palmid.templates.compare import compare_templates, similarity_matrix

    cv2.setNumThreads(1)
    faiss.omp_set_num_threads(1)
    data = _default_data_dir()
    photo = photo or data / "coep" / "images" / "001" / "001_01.jpg"
    roi_image = roi_image or data / "tongji" / "images" / "session1" / "00001.png"
    for path in (photo, roi_image):
        if not path.is_file():
            fail(f"benchmark image {path} not found (pass --photo / --roi or set PALMID_SHARED_DATA_DIR)")
    pipeline = Pipeline()
    try:
        photo_bytes = photo.read_bytes()
        p50, p95 = _timings_ms(lambda: pipeline.template_from_bytes(photo_bytes, detector="landmarks"), repeats=repeats)
        typer.echo(f"photo -> template (landmarks, {photo.name}): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        grey = cv2.imread(str(roi_image), cv2.IMREAD_GRAYSCALE)
        if grey is None or grey.shape != (128, 128):
            fail(f"{roi_image} is not a 128x128 ROI image")
        roi = PalmROI(pixels=np.ascontiguousarray(grey), method="roi")
        extractor = pipeline.extractor
        p50, p95 = _timings_ms(lambda: extractor.extract(roi), repeats=repeats * 3)
        typer.echo(f"ROI -> template: p50 {p50:.2f} ms, p95 {p95:.2f} ms")
        roi_bytes = roi_image.read_bytes()
        p50, p95 = _timings_ms(lambda: pipeline.template_from_bytes(roi_bytes, detector="roi"), repeats=repeats * 3)
        typer.echo(f"ROI file bytes -> template (decode + checks + extract): p50 {p50:.2f} ms, p95 {p95:.2f} ms")
        template = extractor.extract(roi)
        other = extractor.extract(PalmROI(pixels=np.ascontiguousarray(grey[:, ::-1]), method="roi"))
        rng = np.random.default_rng(0)
        matcher = EngineMatcher()
        lanes = LaneCodes(words=matcher.scan_bytes // 8)
        lanes.reserve(gallery_size, used=0)
        lanes.set_rows(0, rng.integers(0, 256, size=(gallery_size, matcher.scan_bytes), dtype=np.uint8))
        probe_codes = matcher.scan_probe_codes(template)
        scan_min(lanes, 1000, probe_codes)
        rate = _rate_per_s(lambda: scan_min(lanes, gallery_size, probe_codes), gallery_size)
        typer.echo(
            f"index scan: {rate / 1e6:.2f} M palms/s ({matcher.scan_bytes} B scan codes x {len(probe_codes)} shifted "
            f"probe codes, {best_kernel()} kernel, 1 x {gallery_size})"
        )
        rate = _rate_per_s(lambda: [compare_templates(template, other) for _ in range(200)], 200)
        typer.echo(f"full comparisons, 1:1 calls: {rate:.0f} /s")
        gallery = [other] * 500
        rate = _rate_per_s(lambda: similarity_matrix([template], gallery), len(gallery))
        typer.echo(f"full comparisons, 1 x {len(gallery)} (re-ranking): {rate:.0f} /s")
        rate = _rate_per_s(lambda: similarity_matrix(gallery[:200], gallery), 200 * len(gallery))
        typer.echo(f"full comparisons, 200 x {len(gallery)} (evaluation): {rate:.0f} /s")
    except PalmidError as exc:
        fail(exc)
    finally:
        pipeline.close()
