"""Helpers shared by CLI verbs: settings from options, and one way to fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

from palmid.config import Settings, load_settings
from palmid.errors import PalmidError


def fail(error: PalmidError | str, *, exit_code: int = 2) -> NoReturn:
    """Print ``error`` on stderr (with its reason code) and exit non-zero."""
    typer.echo(f"palmid: error: {error}", err=True)
    raise typer.Exit(code=exit_code)


def settings_from_cli(*, config: Path | None = None, **overrides: Any) -> Settings:
    """Load settings with CLI overrides; a bad value exits with a clear message."""
    try:
        return load_settings(config_file=config, **overrides)
    except PalmidError as exc:
        fail(exc)
