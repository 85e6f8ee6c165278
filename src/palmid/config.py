"""Settings: frozen, validated once at the edge (CLI or service start).

Sources, highest priority first: explicit keyword overrides, ``PALMID_*`` environment variables, a TOML file
(``--config FILE`` or ``PALMID_CONFIG``), then defaults. Nothing is read at import time.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from palmid.errors import ConfigError

BIPA_MAX_DAYS = 3 * 365


class RetentionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_idle_days: int = Field(365, ge=1, le=BIPA_MAX_DAYS)
    max_total_days: int = Field(BIPA_MAX_DAYS, ge=1, le=BIPA_MAX_DAYS)
    sweep_interval_s: float = Field(3600.0, gt=0)


class Settings(BaseSettings):
    """All palmid settings. Environment: ``PALMID_<NAME>`` (nested: ``PALMID_RETENTION__MAX_IDLE_DAYS``)."""

    model_config = SettingsConfigDict(
        env_prefix="PALMID_", env_nested_delimiter="__", frozen=True, extra="forbid", validate_default=True
    )

    data_dir: Path = Path("data")
    """Folder for the embedded database, the local master-key file and other state."""
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<data_dir>/palmid.db``. PostgreSQL: ``postgresql+psycopg://...``."""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shared_data_dir: Path = Path("../shared/data")
    """Real palm datasets for tests, evaluation and benchmarks (never copied into the repo)."""
    detector: Literal["landmarks", "classical", "roi", "auto"] = "landmarks"
    """How the service finds the palm: camera photos -> landmarks; NIR/contact devices -> classical; see pipeline."""
    hand_model_path: Path | None = None
    """MediaPipe hand-landmarker ``.task`` file; default: the one built by ``palmid models build``."""

    # Decisions: thresholds are always derived from a target false-match rate, never a raw distance.
    identification_fpir: float = Field(1e-3, gt=0, lt=1)
    """Target false-positive identification rate for 1:N identification over the whole gallery."""
    identification_fmr: float = Field(1e-6, gt=0, lt=1)
    """Per-comparison false-match rate floor used for identification."""
    verification_fmr: float = Field(1e-6, gt=0, lt=1)
    """Per-comparison false-match rate for 1:1 verification."""

    index_profile: Literal["accurate", "fast"] = "accurate"
    """1:N search stages (``palmid.index.fast.SEARCH_PROFILES``): ``accurate`` (1M palms, 2 cores: p95 30 ms, mate
    first in 99.4% of searches) or ``fast`` (p95 19 ms, 97.6%)."""

    # Input limits (decompression bombs, oversized uploads).
    max_image_bytes: int = Field(15 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=10_000)

    # Abuse controls (NIST SP 800-63B: at most 5 consecutive failures before back-off).
    max_failed_verifications: int = Field(5, ge=1, le=100)
    identify_rate_per_minute: int = Field(120, ge=1)

    retention: RetentionSettings = RetentionSettings()

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @model_validator(mode="after")
    def _check_retention(self) -> Settings:
        if self.retention.max_idle_days > self.retention.max_total_days:
            raise ValueError("retention.max_idle_days cannot exceed retention.max_total_days")
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'palmid.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}", code="config_missing") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def load_settings(*, config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings once. Bad values raise :class:`ConfigError` naming the field."""
    file_path = config_file or (Path(os.environ["PALMID_CONFIG"]) if os.environ.get("PALMID_CONFIG") else None)
    values: dict[str, Any] = _read_toml(file_path) if file_path else {}
    # Environment variables beat the file: only pass file keys that the environment does not set.
    env_keys = {key[len("PALMID_") :].split("__")[0].lower() for key in os.environ if key.startswith("PALMID_")}
    file_values = {key: value for key, value in values.items() if key not in env_keys}
    explicit = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**{**file_values, **explicit})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
