"""``palmid bench search`` end to end on a tiny synthetic two-session dataset (real pipeline, no real data)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from palmid.cli.main import app

REQUIRED = ("gallery", "build_s", "bytes_per_palm", "p50_ms", "p95_ms", "p99_ms", "recall_top1", "fnir_at_fpir")


@pytest.fixture
def tiny_dataset(tmp_path: Path, make_palm_image: Callable[..., NDArray[np.uint8]]) -> Path:
    root = tmp_path / "tiny"
    (root / "images").mkdir(parents=True)
    rows = []
    for palm in range(12):
        for session in (1, 2):
            for sample in range(3):
                name = f"images/p{palm:02d}_s{session}_{sample}.png"
                image = make_palm_image(100 + palm, variant=1 + session * 10 + sample)
                assert cv2.imwrite(str(root / name), image)
                rows.append({"path": name, "palm_id": f"palm{palm:02d}", "session": str(session)})
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "palm_id", "session"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_bench_search_prints_json_with_the_required_keys(tiny_dataset: Path, tmp_path: Path) -> None:
    args = ["bench", "search", "--gallery", "40", "--json", "--dataset", str(tiny_dataset)]
    args += ["--cache-dir", str(tmp_path / "cache"), "--enroll-samples", "2", "--recall-queries", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    for key in REQUIRED:
        assert key in record
    assert record["gallery"] == 40
    assert record["distractors"] == 40 - record["real_enrolled"] > 0
    assert 0.0 <= record["recall_top1"] <= 1.0
    assert record["recall_reference"] == "exhaustive_full"
    assert 0 < record["p50_ms"] <= record["p95_ms"] <= record["p99_ms"]
    assert record["bytes_per_palm"] > 392  # at least the index code
    assert record["kernel"] in {"avx512", "popcnt", "portable"}
    assert record["realism"]["bit_bias_real"] >= 0
    assert (tmp_path / "cache").is_dir()  # the real-palm templates were cached
    again = CliRunner().invoke(app, [*args[:3], "3", *args[4:]])  # second run: from the cache, no distractors
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["distractors"] == 0
    assert json.loads(again.stdout)["realism"] is None


def test_bench_search_takes_a_profile_and_refuses_bad_options(tiny_dataset: Path, tmp_path: Path) -> None:
    args = ["bench", "search", "--gallery", "30", "--json", "--dataset", str(tiny_dataset), "--recall-queries", "2"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--enroll-samples", "2", "--queries", "4"]
    result = CliRunner().invoke(app, [*args, "--profile", "fast", "--dense-scan"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["scan_words"] == 8 and record["dense_scan"] is True
    for bad in (["--profile", "quick"], ["--scan-words", "13"], ["--rerank-k", "64", "--prefilter-k", "8"]):
        refused = CliRunner().invoke(app, [*args, *bad])
        assert refused.exit_code != 0, bad
        assert "Traceback" not in refused.output


def test_bench_search_refuses_a_missing_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "search", "--dataset", str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "manifest.csv" in result.output
