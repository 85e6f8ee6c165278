"""Evaluation outputs: metrics.json, det.png (probit axes), scores.csv, report.md and the summary table."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from palmid.evaluation.metrics import det_curve
from palmid.evaluation.run import EvaluationMetrics, EvaluationRun
from palmid.evaluation.scores import write_scores_csv

__all__ = ["format_summary", "plot_det", "write_outputs"]

_PROBIT_TICKS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5)


def _probit(rates: NDArray[np.float64], floor: float) -> NDArray[np.float64]:
    inv = NormalDist().inv_cdf
    clipped = np.clip(rates, floor, 1 - floor)
    return np.asarray([inv(float(rate)) for rate in clipped], dtype=np.float64)


def plot_det(genuine: NDArray[np.floating], impostor: NDArray[np.floating], path: Path, *, title: str) -> None:
    """DET curve (FRR against FAR) on normal-deviate (probit) axes, written as PNG with the Agg backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = det_curve(genuine, impostor)
    floor = min(0.5 / max(genuine.size, 1), 0.5 / max(impostor.size, 1), 1e-7)
    keep = np.unique(np.linspace(0, curve.far.size - 1, num=min(curve.far.size, 4000)).astype(np.intp))
    figure = Figure(figsize=(5.5, 5.0), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(_probit(curve.far[keep], floor), _probit(curve.frr[keep], floor), linewidth=1.5)
    ticks = _probit(np.asarray(_PROBIT_TICKS), floor)
    labels = [f"{tick:g}" for tick in _PROBIT_TICKS]
    axes.set_xticks(ticks, labels)
    axes.set_yticks(ticks, labels)
    axes.set_xlim(ticks[0], ticks[-1])
    axes.set_ylim(ticks[0], ticks[-1])
    axes.set_xlabel("false accept rate (probit scale)")
    axes.set_ylabel("false reject rate (probit scale)")
    axes.set_title(title)
    axes.grid(True, linewidth=0.4)
    figure.tight_layout()
    figure.savefig(str(path))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.3f}%"


def summary_rows(metrics: EvaluationMetrics) -> list[tuple[str, str]]:
    rows = [("EER", _percent(metrics.eer))]
    rows += [(f"TAR @ FAR {key}", _percent(value)) for key, value in metrics.tar_at_far.items()]
    rows += [
        ("rank-1", _percent(metrics.rank1)),
        ("FTA", _percent(metrics.fta)),
        ("genuine / impostor pairs", f"{metrics.n_genuine} / {metrics.n_impostor}"),
        ("templates per second", f"{metrics.templates_per_s:.1f}"),
    ]
    return rows


def format_summary(run: EvaluationRun) -> str:
    """A plain-text table of the headline numbers."""
    rows = summary_rows(run.metrics)
    width = max(len(name) for name, _ in rows)
    head = f"{run.dataset.name} | {run.protocol} | detector {run.detector} | extractor {run.extractor}"
    return "\n".join([head, *(f"  {name:<{width}}  {value}" for name, value in rows)])


def write_outputs(run: EvaluationRun, out_dir: Path) -> None:
    """Write metrics.json, scores.csv, det.png and report.md into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = asdict(run.metrics)
    metrics.update(
        protocol=run.protocol,
        detector=run.detector,
        extractor=run.extractor,
        n_images=len(run.manifest.entries),
        fta_reasons=run.failure_counts,
        roi_methods=run.method_counts,
    )
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    names = [entry.name for entry in run.manifest.entries]
    write_scores_csv(run.scores, out_dir / "scores.csv", image_paths=names)
    plot_det(
        run.scores.genuine_scores,
        run.scores.impostor_scores,
        out_dir / "det.png",
        title=f"{run.dataset.name} ({run.protocol})",
    )
    table = "\n".join(f"| {name} | {value} |" for name, value in summary_rows(run.metrics))
    failures = ", ".join(f"{code}: {count}" for code, count in sorted(run.failure_counts.items())) or "none"
    methods = ", ".join(f"{name}: {count}" for name, count in sorted(run.method_counts.items())) or "none"
    report = f"""# palmid evaluation: {run.dataset.name}

- protocol: `{run.protocol}`; detector: `{run.detector}`; extractor: `{run.extractor}`
- images: {len(run.manifest.entries)}; failures to acquire: {failures}; ROI methods used: {methods}
- images without a template stay in the count with the lowest similarity

| metric | value |
|---|---|
{table}

Files: `metrics.json` (rates as fractions), `scores.csv` (every scored pair), `det.png` (DET curve, probit axes).
"""
    (out_dir / "report.md").write_text(report, encoding="utf-8")
