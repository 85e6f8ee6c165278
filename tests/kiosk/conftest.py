"""Browser fixtures for the kiosk: Debian's Chromium driven by Playwright, with a fake camera fed from a Y4M file.

Never downloads a browser: it uses ``/usr/bin/chromium`` (or ``PALMID_CHROMIUM``) and skips with a reason when it is
missing (``.ci/run`` installs it; ``PALMID_REQUIRE_BROWSER=1`` turns the skip into a failure).
Screenshots go to ``$PALMID_ARTIFACTS_DIR/kiosk/<test>`` (default: the test's ``tmp_path``).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from kiosk_browser import chromium_path, free_port, wait_for_http
from kiosk_camera import synthetic_hand_video


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    path = chromium_path()
    if not path.exists():
        reason = f"Chromium not found at {path} (apt-get install -y chromium, or set PALMID_CHROMIUM)"
        if os.environ.get("PALMID_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; PALMID_REQUIRE_BROWSER=1 forbids skipping the browser tests")
        pytest.skip(reason)
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return path


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where this test's screenshots go (printed, so a CI log names the folder)."""
    base = os.environ.get("PALMID_ARTIFACTS_DIR")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = (Path(base) / "kiosk" / name) if base else (tmp_path / "screenshots")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    print(f"kiosk screenshots: {folder}")
    return folder


@pytest.fixture
def serve_in_thread() -> Iterator[Callable[[FastAPI], str]]:
    """Run an ASGI app with uvicorn in a thread on a free port; yields a function app -> base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"kiosk-fake-api-{port}", daemon=True)
        thread.start()
        servers.append((server, thread))
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/kiosk/notice.json", timeout_s=20, alive=thread.is_alive)
        return base

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def fake_camera_file(tmp_path: Path) -> Path:
    """A drawn hand (no real data needed) for page-level tests."""
    return synthetic_hand_video(tmp_path / "drawn-hand.y4m")
