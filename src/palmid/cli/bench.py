"""The ``palmid bench`` command group (engine and search benchmarks register here)."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Speed benchmarks that print figures (one core).", no_args_is_help=True)
