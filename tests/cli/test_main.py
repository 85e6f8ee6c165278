from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from palmid import __version__
from palmid.cli.main import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"palmid {__version__}"


def test_help_lists_the_verbs() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("serve", "models"):
        assert verb in result.stdout


def test_bad_setting_exits_non_zero_with_a_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--port", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "port" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_healthz_and_docs(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALMID_") or k == "PALMID_SHARED_DATA_DIR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "palmid", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"server did not start: {output[-2000:]}") from None
                time.sleep(0.2)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        docs = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        assert "cdn" not in docs.text.lower(), "docs must not load assets from a CDN"
        assert httpx.get(f"http://127.0.0.1:{port}/docs-assets/swagger-ui-bundle.js", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()["info"]["title"] == "palmid"
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


def test_bundled_swagger_ui_renders_the_openapi_version_we_serve(tmp_path: Path) -> None:
    """FastAPI emits OpenAPI 3.1, which Swagger UI renders from major version 5 on ("Unable to render" before)."""
    from swagger_ui_bundle import swagger_ui_path

    from palmid.config import Settings
    from palmid.service.app import close_app, create_app

    major = int(Path(swagger_ui_path).name.removeprefix("swagger-ui-").split(".")[0])
    assert major >= 5
    assert (Path(swagger_ui_path) / "swagger-ui-bundle.js").is_file()
    app = create_app(settings=Settings(data_dir=tmp_path / "data"))
    try:
        assert app.openapi()["openapi"].startswith("3.1")
    finally:
        close_app(app)
