"""``palmid bench rebuild``: fills a real encrypted store, times the service's rebuild, prints JSON figures."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from palmid.cli.main import app
from palmid.config import Settings
from palmid.storage.repository import Store

runner = CliRunner()


def _bench(data_dir: Path, gallery: int) -> dict[str, object]:
    args = ["bench", "rebuild", "--gallery", str(gallery), "--data-dir", str(data_dir), "--templates", "random"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    record: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return record


def test_bench_rebuild_fills_the_store_then_rebuilds_every_palm(tmp_path: Path) -> None:
    data_dir = tmp_path / "bench"
    first = _bench(data_dir, 300)
    assert {"gallery", "rebuild_s", "per_s", "bytes_per_palm"} <= set(first)
    assert first["gallery"] == 300 and first["filled"] == 300 and first["backend"] == "sqlite"
    assert isinstance(first["per_s"], float) and first["per_s"] > 0
    assert first["codes_recomputed"] == 0  # the fill stores each palm's index code, as enrollment does

    again = _bench(data_dir, 500)  # the store is kept and topped up
    assert again["gallery"] == 500 and again["filled"] == 200
    with Store.open(settings=Settings(data_dir=data_dir)) as store:
        assert store.count_subjects() == 500
        assert store.verify_audit().ok  # the bulk fill leaves the audit chain intact


def test_bench_rebuild_refuses_a_data_dir_with_real_tenants(tmp_path: Path) -> None:
    data_dir = tmp_path / "service"
    with Store.open(settings=Settings(data_dir=data_dir)) as store:
        store.create_tenant(name="shop", scopes=frozenset({"enroll"}))
    args = ["bench", "rebuild", "--gallery", "10", "--data-dir", str(data_dir), "--templates", "random"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "real tenants" in result.output
    with Store.open(settings=Settings(data_dir=data_dir)) as store:
        assert store.count_subjects() == 0


def test_bench_rebuild_refuses_unknown_template_kinds(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "rebuild", "--data-dir", str(tmp_path), "--templates", "uniform"])
    assert result.exit_code != 0
    assert "--templates" in result.output
