"""`palmid eval` end to end on small synthetic ROI sets, and on a Tongji subset (real data)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))
from palm_textures import palm_texture, roi_from

from palmid.cli.main import app
from palmid.templates.calibration import threshold_for_fmr

METRIC_KEYS = {"eer", "tar_at_far", "fta", "rank1", "n_genuine", "n_impostor", "templates_per_s"}


def synthetic_roi_dataset(root: Path, *, n_palms: int = 4) -> Path:
    lines = ["path,palm_id,subject,session"]
    for palm in range(n_palms):
        texture = palm_texture(100 + palm)
        for session in (1, 2):
            for sample in range(2):
                roi = roi_from(texture, dx_px=2 * sample - 1, dy_px=session - 1, angle_deg=2.0 * (session - 1))
                name = f"images/p{palm}_s{session}_{sample}.png"
                (root / "images").mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / name), roi.pixels)
                lines.append(f"{name},palm{palm},{palm},{session}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


def test_eval_writes_the_contracted_outputs(tmp_path: Path) -> None:
    dataset = synthetic_roi_dataset(tmp_path / "data")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", str(dataset), "--roi", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "EER" in result.output and "TAR @ FAR 1e-2" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS
    assert list(metrics["tar_at_far"]) == ["1e-2", "1e-3", "1e-4", "1e-5", "1e-6"]
    assert metrics["tar_at_far"]["1e-2"] is None  # 48 impostor pairs cannot measure 1e-2
    assert metrics["n_genuine"] == 4 * 2 * 2 and metrics["n_impostor"] == 8 * 8 - 16
    assert metrics["fta"] == 0.0 and metrics["eer"] == 0.0 and metrics["rank1"] == 1.0
    with (out / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 64 and set(rows[0]) == {"probe", "gallery", "similarity", "genuine"}
    assert (out / "det.png").read_bytes().startswith(b"\x89PNG")
    assert "EER" in (out / "report.md").read_text()


def test_eval_all_pairs_counts_every_unordered_pair(tmp_path: Path) -> None:
    dataset = synthetic_roi_dataset(tmp_path / "data", n_palms=3)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", str(dataset), "--roi", "--protocol", "all-pairs", "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_genuine"] + metrics["n_impostor"] == 12 * 11 // 2
    assert metrics["n_genuine"] == 3 * (4 * 3 // 2)


def test_unreadable_images_count_as_failures_to_acquire(tmp_path: Path) -> None:
    dataset = synthetic_roi_dataset(tmp_path / "data", n_palms=2)
    (dataset / "images" / "p0_s2_0.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", str(dataset), "--roi", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["fta"] == pytest.approx(1 / 8)
    assert metrics["n_genuine"] + metrics["n_impostor"] == 16
    assert sum(metrics["fta_reasons"].values()) == 1


@pytest.mark.parametrize(
    ("manifest", "args"),
    [
        ("path,palm_id\nimages/a.png,a\n", []),
        (None, []),
        ("path,palm_id,session\n", ["--protocol", "sideways"]),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(tmp_path: Path, manifest: str | None, args: list[str]) -> None:
    if manifest is not None:
        (tmp_path / "manifest.csv").write_text(manifest)
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--roi", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code != 0
    assert "error" in result.output


@pytest.mark.realdata
def test_tongji_subset_accuracy(shared_data_dir: Path, tmp_path: Path) -> None:
    source = shared_data_dir / "tongji"
    with (source / "manifest.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["palm_id"].split("_")[-1]) <= 40]
    lines = ["path,palm_id,session"] + [f"{source / r['path']},{r['palm_id']},{r['session']}" for r in rows]
    dataset = tmp_path / "tongji40"
    dataset.mkdir()
    (dataset / "manifest.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["eval", str(dataset), "--roi", "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_genuine"] == 40 * 100 and metrics["fta"] == 0.0
    assert metrics["eer"] <= 0.005
    assert metrics["tar_at_far"]["1e-4"] >= 0.98
    assert metrics["rank1"] >= 0.995
    # the shipped calibration is honest on this subset: observed FMR at the 1e-3 threshold stays near 1e-3
    threshold = threshold_for_fmr(1e-3)
    with (out / "scores.csv").open() as handle:
        impostor = [float(r["similarity"]) for r in csv.DictReader(handle) if r["genuine"] == "0"]
    observed = sum(score >= threshold for score in impostor) / len(impostor)
    assert observed <= 2e-3
