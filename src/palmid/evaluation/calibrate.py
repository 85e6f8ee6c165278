"""Fit the impostor tail model behind :func:`palmid.templates.calibration.threshold_for_fmr`.

``palmid eval ... --calibrate`` fits one :class:`~palmid.templates.calibration.ImpostorTailModel` per dataset and
writes ``calibration.json`` next to the metrics. ``python -m palmid.evaluation.calibrate OUT_DIR... --write PATH``
collects those fits into the shipped table (``src/palmid/templates/calibration_data.py``).

Fit: ``p`` is the mean single-alignment impostor similarity (same rotation, no shift). ``dof`` and
``alignments`` are chosen on a log grid to match log10 of the empirical best-alignment impostor survival at
levels from 1e-2 down to 30 / n_impostor (the measurable tail); the binomial tail then extrapolates below it.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ValidationFailed
from palmid.evaluation.run import EvaluationRun
from palmid.features.registry import layout_for
from palmid.templates.calibration import ImpostorTailModel, best_of_draws, binomial_survival
from palmid.templates.matching import best_alignment_similarity, code_bits
from palmid.templates.template import Template

__all__ = [
    "CalibrationFit",
    "calibrate_run",
    "fit_tail_model",
    "single_alignment_similarity",
    "write_calibration_table",
]

_MIN_TAIL_COUNT = 30


@dataclass(frozen=True)
class CalibrationFit:
    model: ImpostorTailModel
    levels: tuple[float, ...]
    thresholds: tuple[float, ...]
    model_fmr: tuple[float, ...]
    extrapolated: dict[str, float]


def single_alignment_similarity(probes: Sequence[Template], gallery: Sequence[Template]) -> NDArray[np.float32]:
    """Similarity at the identity alignment only (first sample of each template)."""
    layout = layout_for(probes[0].extractor_id, probes[0].version)
    middle = len(layout.rotations_deg) // 2
    single = replace(layout, rotation_pairs=((middle, middle),), max_shift_cells=0)
    return best_alignment_similarity(
        code_bits([t.samples[0] for t in probes], layout),
        code_bits([t.samples[0] for t in gallery], layout),
        single,
    )


def _tail_levels(n_impostor: int) -> NDArray[np.float64]:
    floor = _MIN_TAIL_COUNT / n_impostor
    levels = [level for level in 10.0 ** -np.arange(2.0, 9.0, 0.25) if level >= floor]
    if len(levels) < 3:
        raise ValidationFailed(
            f"{n_impostor} impostor scores are too few to fit a tail (need {int(_MIN_TAIL_COUNT * 10**2.5)})",
            code="calibration_too_few",
        )
    return np.asarray(levels)


def fit_tail_model(
    best_impostor: NDArray[np.floating],
    single_impostor: NDArray[np.floating],
    *,
    extractor_id: str,
    version: int,
    dataset: str,
) -> CalibrationFit:
    """Fit ``dof`` and ``alignments`` to the best-alignment impostor tail (see module docstring)."""
    best = np.sort(np.asarray(best_impostor, dtype=np.float64))
    levels = _tail_levels(best.size)
    thresholds = np.asarray([best[math.floor(best.size * (1 - level))] for level in levels])
    empirical = np.asarray([np.count_nonzero(best >= t) / best.size for t in thresholds])
    p = float(np.mean(single_impostor))
    if not 0 < p < 1:
        raise ValidationFailed(
            "single-alignment impostor similarities must average in (0, 1)", code="calibration_failed"
        )
    best_fit = (math.inf, 0, 0.0)
    for dof in np.unique(np.geomspace(50, 8000, 90).astype(int)):
        survival = binomial_survival(int(dof), p)[np.minimum(np.ceil(thresholds * dof - 1e-9).astype(int), dof)]
        for alignments in np.geomspace(1, 5000, 90):
            predicted = np.maximum(best_of_draws(survival, float(alignments)), 1e-300)
            error = float(np.sum((np.log10(predicted) - np.log10(empirical)) ** 2))
            if error < best_fit[0]:
                best_fit = (error, int(dof), float(alignments))
    model = ImpostorTailModel(
        extractor_id=extractor_id,
        version=version,
        dataset=dataset,
        p=p,
        dof=best_fit[1],
        alignments=round(best_fit[2], 3),
        n_impostor=int(best.size),
    )
    return CalibrationFit(
        model=model,
        levels=tuple(float(level) for level in empirical),
        thresholds=tuple(float(t) for t in thresholds),
        model_fmr=tuple(model.fmr_at(float(t)) for t in thresholds),
        extrapolated={f"{fmr:.0e}": model.threshold_for(fmr) for fmr in (1e-4, 1e-6, 1e-8, 1e-9)},
    )


def write_fit(fit: CalibrationFit, path: Path) -> None:
    path.write_text(json.dumps(asdict(fit), indent=2) + "\n", encoding="utf-8")


def write_calibration_table(fit_files: Sequence[Path], target: Path) -> None:
    """Write the shipped calibration module from ``calibration.json`` files."""
    entries = [json.loads(path.read_text(encoding="utf-8"))["model"] for path in fit_files]
    body = ",\n".join(
        "    {\n" + "".join(f"        {key!r}: {value!r},\n" for key, value in entry.items()) + "    }"
        for entry in entries
    ).replace("'", '"')
    target.write_text(
        '"""Impostor tail fits shipped with the package (generated by palmid.evaluation.calibrate; do not edit)."""\n'
        "\nfrom __future__ import annotations\n\n"
        f"CALIBRATION: tuple[dict[str, object], ...] = (\n{body},\n)\n",
        encoding="utf-8",
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Collect calibration.json fits into the shipped table.")
    parser.add_argument("fits", nargs="+", type=Path, help="calibration.json files or eval output folders")
    parser.add_argument("--write", type=Path, required=True, help="target module (calibration_data.py)")
    args = parser.parse_args(argv)
    files = [path / "calibration.json" if path.is_dir() else path for path in args.fits]
    write_calibration_table(files, args.write)
    print(f"wrote {len(files)} fit(s) to {args.write}")


if __name__ == "__main__":  # pragma: no cover
    main()


def calibrate_run(run: EvaluationRun) -> CalibrationFit:
    """Fit the tail model on an evaluation's impostor pairs (images without a template are left out)."""
    from palmid.evaluation.protocol import plan_protocol

    plan = plan_protocol(run.manifest, run.protocol)
    templates = run.acquisition.templates
    valid = np.asarray([t is not None for t in templates], dtype=np.bool_)
    probe_ok, gallery_ok = valid[plan.probe_rows], valid[plan.gallery_rows]
    probes = [t for t in (templates[r] for r in plan.probe_rows[probe_ok]) if t is not None]
    gallery = [t for t in (templates[c] for c in plan.gallery_rows[gallery_ok]) if t is not None]
    if not probes or not gallery:
        raise ValidationFailed("no templates to calibrate on", code="calibration_too_few")
    impostor = (plan.pair_mask & ~plan.genuine_mask)[np.ix_(probe_ok, gallery_ok)]
    single = single_alignment_similarity(probes, gallery)[impostor]
    both_valid = valid[run.scores.probe_rows] & valid[run.scores.gallery_rows]
    best = run.scores.similarity[both_valid & ~run.scores.genuine]
    return fit_tail_model(
        best, single, extractor_id=probes[0].extractor_id, version=probes[0].version, dataset=run.dataset.name
    )
