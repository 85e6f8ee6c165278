"""`palmid bench engine` prints its figures (real data: a COEP photo and a Tongji ROI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from palmid.cli.main import app


@pytest.mark.realdata
def test_bench_engine_prints_figures(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALMID_SHARED_DATA_DIR", str(shared_data_dir))
    result = CliRunner().invoke(app, ["bench", "engine", "--repeats", "3", "--gallery-size", "1000"])
    assert result.exit_code == 0, result.output
    for figure in ("photo -> template", "ROI -> template", "index scan", "full comparisons"):
        assert figure in result.output


def test_bench_engine_refuses_missing_images(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "engine", "--photo", str(tmp_path / "none.jpg")])
    assert result.exit_code != 0
    assert "not found" in result.output
