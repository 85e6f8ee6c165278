from __future__ import annotations

from pathlib import Path

import pytest

from palmid.config import load_settings
from palmid.errors import ConfigError


def test_defaults_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("PALMID_")]:
        monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.port == 8000
    assert settings.host == "127.0.0.1"
    assert settings.effective_database_url == f"sqlite:///{Path('data') / 'palmid.db'}"
    assert settings.retention.max_idle_days == 365


def test_toml_file_then_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "palmid.toml"
    config.write_text('port = 9001\nlog_format = "json"\n[retention]\nmax_idle_days = 30\n')
    monkeypatch.setenv("PALMID_PORT", "9002")
    settings = load_settings(config_file=config)
    assert settings.port == 9002
    assert settings.log_format == "json"
    assert settings.retention.max_idle_days == 30


def test_explicit_override_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALMID_PORT", "9002")
    assert load_settings(port=9100).port == 9100


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("PALMID_PORT", "70000", "port"),
        ("PALMID_LOG_FORMAT", "xml", "log_format"),
        ("PALMID_IDENTIFICATION_FPIR", "2", "identification_fpir"),
        ("PALMID_DATABASE_URL", "mysql://x", "database_url"),
        ("PALMID_RETENTION__MAX_IDLE_DAYS", "5000", "retention"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert field in str(caught.value)
    assert caught.value.code == "config_invalid"


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "palmid.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings(config_file=config)


def test_missing_and_broken_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file=tmp_path / "absent.toml")
    assert caught.value.code == "config_missing"
    broken = tmp_path / "broken.toml"
    broken.write_text("port = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=broken)


def test_idle_cannot_exceed_total(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALMID_RETENTION__MAX_IDLE_DAYS", "400")
    monkeypatch.setenv("PALMID_RETENTION__MAX_TOTAL_DAYS", "300")
    with pytest.raises(ConfigError, match="max_idle_days"):
        load_settings()
