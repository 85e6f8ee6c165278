"""Helpers for the kiosk browser tests: Chromium flags, viewports, a free port, a page driver with screenshots.

Chromium is Debian's (``/usr/bin/chromium`` or ``PALMID_CHROMIUM``), never a downloaded one.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)
TABLET_VIEWPORT = {"width": 1280, "height": 800}
PHONE_VIEWPORT = {"width": 390, "height": 844}
STEP_TIMEOUT_MS = 20_000


def chromium_path() -> Path:
    return Path(os.environ.get("PALMID_CHROMIUM", "/usr/bin/chromium"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, *, timeout_s: float, alive: Any = None) -> None:
    """Poll ``url`` until it answers (``alive()`` returning False aborts early, e.g. a dead server process)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if (alive is not None and not alive()) or time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s} s")
        time.sleep(0.2)


def launch_kiosk_browser(playwright: Any, *, executable: Path, camera_file: Path, profile_dir: Path) -> Any:
    """A fresh Chromium profile whose camera plays ``camera_file``; returns a Playwright BrowserContext."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir=str(profile_dir),
        executable_path=str(executable),
        headless=True,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera_file}"],
        viewport=TABLET_VIEWPORT,
        accept_downloads=True,
        permissions=["camera"],
    )


class KioskDriver:
    """One browser page on the kiosk, with numbered screenshots in ``shots``."""

    def __init__(self, page: Any, *, base_url: str, shots: Path, step_timeout_ms: int = STEP_TIMEOUT_MS) -> None:
        self.page = page
        self.base_url = base_url
        self.shots = shots
        self.count = 0
        self.errors: list[str] = []
        self.api_failures: list[Any] = []
        page.set_default_timeout(step_timeout_ms)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("response", self._note_response)

    def _note_response(self, response: Any) -> None:
        if "/v1/" in response.url and response.status >= 400:
            self.api_failures.append(response)

    def describe_api_failures(self) -> str:
        """The API's error answers seen so far (status and JSON error body: codes, never images or scores)."""
        lines = []
        for response in self.api_failures:
            try:
                body = response.text()
            except Exception as exc:  # the page may have gone; the status still helps
                body = f"<body unavailable: {type(exc).__name__}>"
            lines.append(f"{response.request.method} {response.url} -> {response.status} {body[:500]}")
        return "\n".join(lines) or "(no API errors)"

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base_url}/kiosk/{path}")

    def screen(self, screen_id: str) -> None:
        """Wait until the page shows the screen (a ``<section data-screen>``) with this id."""
        self.page.wait_for_selector(f"#{screen_id}:not([hidden])", state="visible")

    def current_screen(self) -> str:
        return str(self.page.evaluate("document.body.dataset.current || ''"))

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def setup(self, *, key: str, mode: str = "entry") -> None:
        """The operator stores the merchant key on the device (``/kiosk/#setup``)."""
        self.open("#setup")
        self.screen("setup")
        self.page.fill("#setup-key", key)
        self.page.select_option("#setup-mode", mode)
        self.page.click("#setup-save")
        self.page.wait_for_selector("#setup-status:has-text('Saved')")

    def take_photo(self) -> None:
        self.page.wait_for_selector("#take-photo:enabled")
        self.page.click("#take-photo")
