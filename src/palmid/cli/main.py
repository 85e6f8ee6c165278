"""The ``palmid`` command: thin verbs over the library and the service.

Every verb validates settings once, prints a clear message and exits non-zero on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from palmid import __version__
from palmid.cli.admin_cmd import audit_app, tenants_app
from palmid.cli.bench import bench_app
from palmid.cli.bench_engine import bench_engine
from palmid.cli.bench_rebuild import bench_rebuild
from palmid.cli.bench_search import bench_search
from palmid.cli.common import fail, settings_from_cli
from palmid.cli.eval_cmd import eval_command
from palmid.cli.purpose_cmd import legal_app, retention_app
from palmid.errors import PalmidError

app = typer.Typer(
    name="palmid",
    help="palmid: private-by-construction palm identification (enroll, identify, verify, erase).",
    no_args_is_help=True,
    add_completion=False,
)
models_app = typer.Typer(help="Build the model assets from PyPI packages (no download at run time).")
app.add_typer(models_app, name="models")
app.add_typer(tenants_app, name="tenants")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(legal_app, name="legal-request")
app.add_typer(bench_app, name="bench")
app.command("eval")(eval_command)
bench_app.command("engine")(bench_engine)
bench_app.command("search")(bench_search)
bench_app.command("rebuild")(bench_rebuild)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"palmid {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """palmid command line."""


@models_app.command("build")
def build_models(
    quiet_if_present: Annotated[bool, typer.Option(help="Do nothing (silently) if the model exists.")] = False,
    wheel_dir: Annotated[Path | None, typer.Option(help="Folder with an already downloaded wheel.")] = None,
) -> None:
    """Build the MediaPipe hand-landmarker model from the mediapipe 0.10.21 wheel on PyPI."""
    from palmid.detect.model_build import DEFAULT_MODEL_PATH, build_hand_model, model_digest

    if DEFAULT_MODEL_PATH.exists() and quiet_if_present:
        return
    try:
        path = build_hand_model(wheel_dir=wheel_dir)
    except PalmidError as exc:
        fail(exc)
    typer.echo(f"hand model written to {path} (sha256 {model_digest(path)[:16]}...)")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (or PALMID_DATA_DIR).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML configuration file (or PALMID_CONFIG).")] = None,
) -> None:
    """Run the identity service (API, kiosk pages, OpenAPI docs at /docs)."""
    import uvicorn

    from palmid.logs import configure_logging
    from palmid.service.app import create_app

    settings = settings_from_cli(config=config, host=host, port=port, data_dir=data_dir)
    configure_logging(log_format=settings.log_format, level=settings.log_level)
    try:
        application = create_app(settings=settings)
    except PalmidError as exc:
        fail(exc)
    # access_log=False: request paths carry subject refs, which do not belong in operator logs.
    uvicorn.run(
        application, host=settings.host, port=settings.port, log_config=None, server_header=False, access_log=False
    )


if __name__ == "__main__":  # pragma: no cover
    app()
