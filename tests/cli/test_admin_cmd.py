"""Operator verbs: `palmid tenants create|list|revoke` and `palmid audit verify` (SQLite data dir)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from palmid.config import Settings
from palmid.errors import AuthError
from palmid.storage.repository import Store

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_env_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PALMID_DATABASE_URL", "PALMID_DATA_DIR", "PALMID_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _app() -> typer.Typer:
    from palmid.cli.main import app

    return app


def test_create_prints_the_key_once_on_stdout(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = runner.invoke(
        _app(), ["tenants", "create", "Shop One", "--scopes", "enroll,identify", "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    api_key = result.stdout.strip()
    assert api_key.startswith("pk_live_") and "\n" not in api_key
    assert "shown only once" in result.stderr
    with Store.open(settings=Settings(data_dir=data_dir)) as store:
        tenant = store.authenticate(api_key=api_key)
    assert tenant.name == "Shop One"
    assert tenant.scopes == frozenset({"enroll", "identify"})
    listing = runner.invoke(_app(), ["tenants", "list", "--data-dir", str(data_dir)])
    assert listing.exit_code == 0
    assert tenant.key_id in listing.stdout and "active" in listing.stdout
    assert api_key not in listing.stdout


def test_bad_scope_and_duplicate_exit_non_zero(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    bad = runner.invoke(_app(), ["tenants", "create", "shop", "--scopes", "enroll,root", "--data-dir", data_dir])
    assert bad.exit_code != 0
    assert "unknown scope" in bad.stderr
    assert (
        runner.invoke(_app(), ["tenants", "create", "shop", "--scopes", "enroll", "--data-dir", data_dir]).exit_code
        == 0
    )
    again = runner.invoke(_app(), ["tenants", "create", "shop", "--scopes", "enroll", "--data-dir", data_dir])
    assert again.exit_code != 0
    assert "already exists" in again.stderr


def test_revoke_takes_effect_and_unknown_key_fails(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = runner.invoke(_app(), ["tenants", "create", "shop", "--scopes", "verify", "--data-dir", str(data_dir)])
    api_key = created.stdout.strip()
    key_id = api_key.split("_")[2]
    revoked = runner.invoke(_app(), ["tenants", "revoke", key_id, "--data-dir", str(data_dir)])
    assert revoked.exit_code == 0, revoked.output
    with Store.open(settings=Settings(data_dir=data_dir)) as store, pytest.raises(AuthError):
        store.authenticate(api_key=api_key)
    listing = runner.invoke(_app(), ["tenants", "list", "--data-dir", str(data_dir)])
    assert "revoked" in listing.stdout
    missing = runner.invoke(_app(), ["tenants", "revoke", "0" * 16, "--data-dir", str(data_dir)])
    assert missing.exit_code != 0


def test_audit_verify_reports_the_first_broken_link(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for name in ("a", "b", "c"):
        runner.invoke(_app(), ["tenants", "create", name, "--scopes", "identify", "--data-dir", str(data_dir)])
    ok = runner.invoke(_app(), ["audit", "verify", "--data-dir", str(data_dir)])
    assert ok.exit_code == 0, ok.output
    assert "3 events" in ok.stdout
    with sqlite3.connect(data_dir / "palmid.db") as connection:
        connection.execute("DROP TRIGGER audit_events_no_update")
        connection.execute("UPDATE audit_events SET detail = 'edited' WHERE seq = 2")
    broken = runner.invoke(_app(), ["audit", "verify", "--data-dir", str(data_dir)])
    assert broken.exit_code == 1
    assert "BROKEN at event 2" in broken.stderr
