"""Kiosk pages in headless Chromium with a fake camera, against a FAKE API (canned decisions, page-level only).

The real end-to-end flow against ``palmid serve`` is in test_kiosk_e2e.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kiosk_browser import PHONE_VIEWPORT, TABLET_VIEWPORT, KioskDriver, launch_kiosk_browser
from kiosk_fake_api import FAKE_KEY, FakeState, build_fake_api

from palmid.capture.quality import GUIDANCE
from palmid.config import Settings
from palmid.kiosk import NOTICE_PURPOSES, NOTICE_VERSION


@pytest.fixture
def fake_kiosk(
    chromium_executable: Path,
    fake_camera_file: Path,
    artifacts_dir: Path,
    tmp_path: Path,
    serve_in_thread: Callable[[Any], str],
) -> Iterator[tuple[KioskDriver, FakeState]]:
    from playwright.sync_api import sync_playwright

    app, state = build_fake_api(settings=Settings(data_dir=tmp_path / "data"))
    base_url = serve_in_thread(app)
    with sync_playwright() as playwright:
        context: Any = launch_kiosk_browser(
            playwright, executable=chromium_executable, camera_file=fake_camera_file, profile_dir=tmp_path / "profile"
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield KioskDriver(page, base_url=base_url, shots=artifacts_dir), state
        finally:
            context.close()


def test_enroll_check_in_my_data_erase_then_check_in_fails(fake_kiosk: tuple[KioskDriver, FakeState]) -> None:
    kiosk, state = fake_kiosk
    page = kiosk.page
    kiosk.setup(key=FAKE_KEY, mode="entry")
    kiosk.shot("operator-setup")

    # Enrollment: notice, consent by keyboard, photos with guidance after a quality refusal.
    kiosk.open("")
    kiosk.screen("home")
    kiosk.shot("home")
    page.click("#go-enroll")
    kiosk.screen("notice")
    page.wait_for_selector("#notice-text h2:has-text('How long we keep it')")
    assert NOTICE_VERSION in page.inner_text("#notice-text")
    kiosk.shot("enroll-notice")
    page.focus("#consent-box")
    page.keyboard.press("Space")
    page.focus("#consent-continue")
    page.keyboard.press("Enter")
    kiosk.screen("capture")
    state.reject_next_enrollment = [{"index": 1, "code": "move_closer"}, {"index": 3, "code": "open_hand"}]
    kiosk.take_photo()
    page.wait_for_selector("#photo-count:has-text('Photo 1 of 4')")
    kiosk.shot("enroll-photo-1")
    for _ in range(3):
        kiosk.take_photo()
    # The fake refused photos 2 and 4: the guidance names the first reason and the two good photos are kept.
    page.wait_for_selector("#guidance.warn")
    assert GUIDANCE["move_closer"] in page.inner_text("#guidance")
    assert page.inner_text("#photo-count") == "Photo 2 of 4"
    assert page.get_attribute("#guidance", "aria-live") == "polite"
    kiosk.shot("enroll-guidance")
    kiosk.take_photo()
    page.wait_for_selector("#photo-count:has-text('Photo 3 of 4')")
    kiosk.take_photo()
    kiosk.screen("success")
    kiosk.shot("enroll-success")

    first, second = state.enrollments
    assert first["images"] == 4 and second["images"] == 4
    consent = second["consent"]
    assert isinstance(consent, dict)
    assert set(consent) == {"notice_version", "purposes", "accepted_at"}
    assert consent["notice_version"] == NOTICE_VERSION
    assert consent["purposes"] == list(NOTICE_PURPOSES)
    assert str(consent["accepted_at"]).endswith("Z")
    assert set(state.photo_sizes_px) == {(640, 480)}  # the camera's frames, as JPEG
    # Camera is released after enrollment.
    assert page.evaluate("document.getElementById('camera').srcObject") is None

    # Check-in: one photo, a decision, no score.
    kiosk.open("checkin.html")
    kiosk.screen("ready")
    page.click("#start-scan")
    kiosk.screen("scan")
    kiosk.shot("checkin-camera")
    kiosk.take_photo()
    kiosk.screen("welcome")
    assert page.inner_text("#welcome-title") == "Welcome!"
    body = page.inner_text("body").lower()
    assert "score" not in body and "%" not in body
    kiosk.shot("checkin-welcome")

    # My data: scan, see the export, erase with one button, download the receipt.
    kiosk.open("mydata.html")
    kiosk.screen("intro")
    page.click("#start-scan")
    kiosk.take_photo()
    kiosk.screen("stored")
    assert page.inner_text("#stored-ref") == state.enrolled_ref
    page.wait_for_selector("#stored-details table.data")
    assert "Merchants with a ref" in page.inner_text("#stored-details")
    kiosk.shot("mydata-stored")
    ref = state.enrolled_ref
    page.click("#erase")
    kiosk.screen("erased")
    assert state.erasures == [ref]
    receipt = json.loads(page.inner_text("#receipt"))
    assert receipt["subject_ref"] == ref and receipt["algorithm"] == "Ed25519"
    assert "Data key" in page.inner_text("#erased-summary")
    kiosk.shot("mydata-erased-receipt")
    with page.expect_download() as download_info:
        page.click("#receipt-download")
    download = download_info.value
    assert download.suggested_filename == "palmid-erasure-receipt.json"
    saved = kiosk.shots / "erasure-receipt.json"
    download.save_as(str(saved))
    assert json.loads(saved.read_text()) == receipt

    # Check-in after erasure: not recognised, with another way offered.
    kiosk.open("checkin.html")
    page.click("#start-scan")
    kiosk.take_photo()
    kiosk.screen("not-recognised")
    assert page.is_visible("#nr-other")
    kiosk.shot("checkin-not-recognised")
    assert not kiosk.errors, kiosk.errors


def test_declining_records_nothing_and_offers_the_usual_way(fake_kiosk: tuple[KioskDriver, FakeState]) -> None:
    kiosk, state = fake_kiosk
    page = kiosk.page
    kiosk.setup(key=FAKE_KEY)
    kiosk.open("enroll.html")
    kiosk.screen("notice")
    # Continuing without ticking the box is refused, with an alert; the camera does not start.
    page.click("#consent-continue")
    page.wait_for_selector("#consent-error:not([hidden])")
    kiosk.shot("consent-required")
    assert page.evaluate("document.getElementById('camera').srcObject") is None
    page.click("#consent-decline")
    kiosk.screen("declined")
    assert "usual way" in page.inner_text("#declined")
    kiosk.shot("declined")
    assert state.enrollments == []
    assert page.evaluate("document.getElementById('camera').srcObject") is None


def test_pages_refuse_to_run_without_an_operator_key(fake_kiosk: tuple[KioskDriver, FakeState]) -> None:
    kiosk, state = fake_kiosk
    page = kiosk.page
    kiosk.open("")
    page.wait_for_selector("#home-not-set-up:not([hidden])")
    kiosk.shot("home-not-set-up")
    for path in ("enroll.html", "checkin.html", "mydata.html"):
        kiosk.open(path)
        kiosk.screen("not-set-up")
    kiosk.shot("not-set-up")
    # A wrong key: the service refuses, the person is told to ask staff (never shown the key).
    kiosk.setup(key="wrong-key")
    kiosk.open("checkin.html")
    page.click("#start-scan")
    kiosk.take_photo()
    kiosk.screen("not-recognised")
    assert "ask a member of staff" in page.inner_text("#nr-text")
    assert "wrong-key" not in page.content()
    assert state.identifications == 0


def test_layout_fits_phone_and_tablet_screens(fake_kiosk: tuple[KioskDriver, FakeState]) -> None:
    kiosk, _ = fake_kiosk
    page = kiosk.page
    kiosk.setup(key=FAKE_KEY, mode="pay")
    for name, viewport in (("phone", PHONE_VIEWPORT), ("tablet", TABLET_VIEWPORT)):
        page.set_viewport_size(viewport)
        for path, screen in (("", "home"), ("enroll.html", "notice"), ("checkin.html", "ready")):
            kiosk.open(path)
            kiosk.screen(screen)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path or 'home'} scrolls sideways on a {name} screen"
            if name == "phone":
                kiosk.shot(f"phone-{screen}")
        kiosk.open("enroll.html")
        kiosk.screen("notice")
        page.check("#consent-box")
        page.click("#consent-continue")
        kiosk.screen("capture")
        page.wait_for_selector("#take-photo:enabled")
        kiosk.shot(f"{name}-capture")
    kiosk.open("")
    assert page.inner_text("#checkin-label") == "Pay"


def test_already_enrolled_palm_gets_a_clear_answer(fake_kiosk: tuple[KioskDriver, FakeState]) -> None:
    kiosk, state = fake_kiosk
    page = kiosk.page
    state.enrolled_ref = "ref_someone"
    kiosk.setup(key=FAKE_KEY)
    kiosk.open("enroll.html")
    kiosk.screen("notice")
    page.wait_for_selector("#notice-text h2")
    page.check("#consent-box")
    page.click("#consent-continue")
    for _ in range(4):
        kiosk.take_photo()
    kiosk.screen("failure")
    reason = page.inner_text("#failure-reason")
    assert "already enrolled" in reason and "My data" in reason
    assert "ref_someone" not in page.content()  # never says whose palm it is
    assert page.is_visible("#failure-home")
    kiosk.shot("already-enrolled")
    assert not kiosk.errors
