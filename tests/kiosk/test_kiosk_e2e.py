"""The kiosk against the REAL service: ``palmid serve`` (uvicorn subprocess, fresh data folder, SQLite), Chromium
with a fake camera playing real COEP palm photos.

enroll (notice, consent, 4 camera photos) -> check in (welcome) -> my data (stored, erase, signed receipt)
-> check in again (not recognised).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kiosk_browser import KioskDriver, free_port, launch_kiosk_browser, wait_for_http
from kiosk_camera import coep_photos, palm_video

from palmid.capture.quality import GUIDANCE
from palmid.config import RetentionSettings, Settings
from palmid.kiosk import NOTICE_VERSION, render_notice

pytestmark = pytest.mark.realdata

SCOPES = "enroll,identify,verify,erase"
START_TIMEOUT_S = 120.0
STEP_TIMEOUT_MS = 90_000  # real recognition on a shared 2-core machine


def _palmid(*args: str, env: dict[str, str], timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "palmid", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """``palmid serve`` on a free port with a fresh data folder; yields (base URL, merchant API key, log file)."""
    tmp_path = tmp_path_factory.mktemp("kiosk-live")
    data_dir = tmp_path / "data"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PALMID_")}
    created = _palmid("tenants", "create", "kiosk-shop", "--scopes", SCOPES, "--data-dir", str(data_dir), env=env)
    if created.returncode != 0:
        raise AssertionError(f"palmid tenants create failed: {created.stderr[-2000:]}")
    api_key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "palmid", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{base_url}/healthz", timeout_s=START_TIMEOUT_S, alive=lambda: process.poll() is None)
        except TimeoutError as exc:
            raise AssertionError(f"palmid serve did not start: {log_path.read_text()[-3000:]}") from exc
        yield base_url, api_key, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def coep_dir(shared_data_dir: Path) -> Path:
    coep = shared_data_dir / "coep"
    if not (coep / "manifest.csv").exists():
        pytest.skip(f"COEP dataset not found at {coep}")
    return coep


@pytest.fixture
def coep_camera_file(shared_data_dir: Path, tmp_path: Path) -> Path:
    """Real palm photos of one COEP person (right hand, 5 samples, 640x480), one second each, looped."""
    return palm_video(coep_photos(coep_dir(shared_data_dir), subject="001"), tmp_path / "coep-001.y4m")


@pytest.fixture
def dark_camera_file(shared_data_dir: Path, tmp_path: Path) -> Path:
    """Another COEP person's palm in a (nearly) dark room."""
    photos = coep_photos(coep_dir(shared_data_dir), subject="002")
    return palm_video(photos, tmp_path / "coep-002-dark.y4m", gain=0.08)


@contextmanager
def kiosk_browser(
    *, base_url: str, log_path: Path, camera_file: Path, chromium: Path, shots: Path, profile_dir: Path
) -> Iterator[KioskDriver]:
    """A kiosk page on the live service; an assertion failure carries the tail of the service log."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context: Any = launch_kiosk_browser(
            playwright, executable=chromium, camera_file=camera_file, profile_dir=profile_dir
        )
        driver: KioskDriver | None = None
        try:
            page = context.pages[0] if context.pages else context.new_page()
            driver = KioskDriver(page, base_url=base_url, shots=shots, step_timeout_ms=STEP_TIMEOUT_MS)
            yield driver
        except Exception as exc:  # Playwright timeouts too: show what the service said
            raise AssertionError(
                f"{exc}\n--- API errors seen by the page ---\n{driver.describe_api_failures() if driver else '-'}"
                f"\n--- palmid serve log (tail) ---\n{log_path.read_text()[-4000:]}"
            ) from exc
        finally:
            context.close()


def test_enroll_check_in_view_erase_then_check_in_fails(
    live_service: tuple[str, str, Path],
    coep_camera_file: Path,
    chromium_executable: Path,
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    base_url, api_key, log_path = live_service
    with kiosk_browser(
        base_url=base_url,
        log_path=log_path,
        camera_file=coep_camera_file,
        chromium=chromium_executable,
        shots=artifacts_dir,
        profile_dir=tmp_path / "profile",
    ) as kiosk:
        run_flow(kiosk, api_key=api_key)


def test_enrollment_in_the_dark_is_guided_by_the_engine_reason_codes(
    live_service: tuple[str, str, Path],
    dark_camera_file: Path,
    chromium_executable: Path,
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    base_url, api_key, log_path = live_service
    with kiosk_browser(
        base_url=base_url,
        log_path=log_path,
        camera_file=dark_camera_file,
        chromium=chromium_executable,
        shots=artifacts_dir,
        profile_dir=tmp_path / "profile",
    ) as kiosk:
        page = kiosk.page
        kiosk.setup(key=api_key)
        kiosk.open("enroll.html")
        kiosk.screen("notice")
        page.wait_for_selector("#notice-text h2")
        page.check("#consent-box")
        page.click("#consent-continue")
        kiosk.screen("capture")
        for number in range(1, 5):
            kiosk.take_photo()
            if number < 4:
                page.wait_for_selector(f"#photo-count:has-text('Photo {number} of 4')")
        page.wait_for_selector("#guidance.warn, #success:not([hidden]), #failure:not([hidden])")
        kiosk.shot("enroll-dark-guidance")
        assert kiosk.current_screen() == "capture", page.inner_text("main")
        assert GUIDANCE["too_dark"] in page.inner_text("#guidance")
        assert page.inner_text("#photo-count") == "Photo 0 of 4"  # every dark photo has to be retaken


def run_flow(kiosk: KioskDriver, *, api_key: str) -> None:
    page = kiosk.page
    kiosk.setup(key=api_key, mode="entry")

    # 1. Enroll: notice, explicit consent, four photos from the camera.
    kiosk.open("enroll.html")
    kiosk.screen("notice")
    page.wait_for_selector("#notice-text h2:has-text('How to delete it')")
    kiosk.shot("enroll-notice")
    page.check("#consent-box")
    page.click("#consent-continue")
    kiosk.screen("capture")
    for number in range(1, 5):
        kiosk.take_photo()
        if number < 4:
            page.wait_for_selector(f"#photo-count:has-text('Photo {number} of 4')")
            page.wait_for_timeout(600)  # the fake camera moves on to the next photo of the same palm
    kiosk.shot("enroll-photos-sent")
    page.wait_for_selector("#success:not([hidden]), #failure:not([hidden]), #guidance.warn")
    if kiosk.current_screen() != "success":
        kiosk.shot("enroll-problem")
        raise AssertionError(f"enrollment did not succeed: {page.inner_text('main')}")
    kiosk.shot("enroll-success")

    # 2. Check in: recognised, decision only.
    kiosk.open("checkin.html")
    kiosk.screen("ready")
    page.click("#start-scan")
    kiosk.take_photo()
    page.wait_for_selector("#welcome:not([hidden]), #not-recognised:not([hidden]), #guidance.warn")
    kiosk.shot("checkin-after-enroll")
    assert kiosk.current_screen() == "welcome", page.inner_text("main")
    assert "score" not in page.inner_text("body").lower()

    # 3. My data: scan, see what is stored, erase with one button, signed receipt shown and downloadable.
    kiosk.open("mydata.html")
    kiosk.screen("intro")
    page.click("#start-scan")
    kiosk.take_photo()
    page.wait_for_selector("#stored:not([hidden]), #not-found:not([hidden]), #guidance.warn")
    kiosk.shot("mydata-stored")
    assert kiosk.current_screen() == "stored", page.inner_text("main")
    subject_ref = page.inner_text("#stored-ref")
    assert subject_ref
    stored = page.inner_text("#stored-details")
    if "Notice sha256" in stored:  # the service offers an export: the consent hashes the very text shown
        served_with = Settings(data_dir=kiosk.shots, retention=RetentionSettings())  # serve runs with defaults
        shown = render_notice(settings=served_with).sha256
        assert shown in stored and NOTICE_VERSION in stored
    page.click("#erase")
    page.wait_for_selector("#erased:not([hidden]), #not-found:not([hidden])")
    kiosk.shot("mydata-erased")
    assert kiosk.current_screen() == "erased", page.inner_text("main")
    receipt = json.loads(page.inner_text("#receipt"))
    assert receipt["subject_ref"] == subject_ref
    assert receipt["signature"] and receipt["public_key"]
    with page.expect_download() as download_info:
        page.click("#receipt-download")
    saved = kiosk.shots / "erasure-receipt.json"
    download_info.value.save_as(str(saved))
    assert json.loads(saved.read_text()) == receipt

    # 4. Check in again: that palm is no longer recognised.
    kiosk.open("checkin.html")
    page.click("#start-scan")
    kiosk.take_photo()
    page.wait_for_selector("#welcome:not([hidden]), #not-recognised:not([hidden]), #guidance.warn")
    kiosk.shot("checkin-after-erase")
    assert kiosk.current_screen() == "not-recognised", page.inner_text("main")
    assert not kiosk.errors, kiosk.errors
