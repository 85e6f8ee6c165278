"""``palmid eval``: evaluate the engine on a dataset folder with a manifest (see palmid.evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from palmid.cli.common import fail
from palmid.errors import PalmidError

__all__ = ["eval_command"]


def eval_command(
    dataset_dir: Annotated[Path, typer.Argument(help="Folder with manifest.csv (path,palm_id,session columns).")],
    roi: Annotated[bool, typer.Option("--roi", help="The images already are aligned palm ROIs.")] = False,
    protocol: Annotated[
        str, typer.Option(help="cross-session (session 2 vs session 1) or all-pairs (every unordered pair).")
    ] = "cross-session",
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: eval-<dataset>).")] = None,
    detector: Annotated[
        str, typer.Option(help="auto (landmarks, then classical when no hand is found), landmarks or classical.")
    ] = "auto",
    extractor: Annotated[str | None, typer.Option(help="Feature extractor (default: the current one).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes for template extraction.")] = None,
    calibrate: Annotated[
        bool, typer.Option("--calibrate", help="Also fit the impostor tail model (OUT/calibration.json).")
    ] = False,
) -> None:
    """Evaluate recognition on DATASET_DIR: EER, TAR at FAR, FTA, rank-1, DET curve and scores."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from palmid.evaluation.acquire import DetectorChoice
    from palmid.evaluation.protocol import ProtocolName
    from palmid.evaluation.report import format_summary, write_outputs
    from palmid.evaluation.run import evaluate_dataset
    from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor

    protocol_name: ProtocolName
    if protocol == "cross-session":
        protocol_name = "cross-session"
    elif protocol == "all-pairs":
        protocol_name = "all-pairs"
    else:
        fail(f"unknown protocol {protocol!r}: use cross-session or all-pairs")
    choice: DetectorChoice
    if roi:
        choice = "roi"
    elif detector in ("auto", "landmarks", "classical"):
        choice = _detector(detector)
    else:
        fail(f"unknown detector {detector!r}: use auto, landmarks or classical")
    if not dataset_dir.is_dir():
        fail(f"dataset folder {dataset_dir} does not exist")
    extractor_name = extractor or DEFAULT_EXTRACTOR
    out_dir = out or Path(f"eval-{dataset_dir.resolve().name}")
    try:
        get_extractor(extractor_name)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        ) as progress:
            task = progress.add_task("templates (then scoring)", total=None)
            run = evaluate_dataset(
                dataset_dir,
                protocol=protocol_name,
                detector=choice,
                extractor=extractor_name,
                workers=workers,
                on_start=lambda total: progress.update(task, total=total),
                on_progress=lambda done: progress.update(task, advance=done),
            )
        write_outputs(run, out_dir)
        if calibrate:
            from palmid.evaluation.calibrate import calibrate_run, write_fit

            fit = calibrate_run(run)
            write_fit(fit, out_dir / "calibration.json")
    except PalmidError as exc:
        fail(exc)
    typer.echo(format_summary(run))
    if calibrate:
        model = fit.model
        typer.echo(f"tail model: p={model.p:.4f} dof={model.dof} alignments={model.alignments:.1f}")
        for level, threshold, predicted in zip(fit.levels, fit.thresholds, fit.model_fmr, strict=True):
            typer.echo(f"  similarity {threshold:.4f}: observed FMR {level:.2e}, model {predicted:.2e}")
        typer.echo("  thresholds: " + ", ".join(f"FMR {k}: {v:.4f}" for k, v in fit.extrapolated.items()))
    typer.echo(f"outputs written to {out_dir}/ (metrics.json, scores.csv, det.png, report.md)")


def _detector(name: str) -> Literal["auto", "landmarks", "classical"]:
    if name == "landmarks":
        return "landmarks"
    if name == "classical":
        return "classical"
    return "auto"
