"""Check-in page per kiosk mode (issue 8): entry sends purpose=entry, age check sends purpose=age_check with a
minimum age and shows the yes/no, a purpose the person did not consent to gets a plain explanation (FAKE API)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kiosk_browser import KioskDriver, launch_kiosk_browser
from kiosk_fake_api import FAKE_KEY, FakeState, build_fake_api

from palmid.config import Settings


@pytest.fixture
def kiosk_and_api(
    chromium_executable: Path,
    fake_camera_file: Path,
    artifacts_dir: Path,
    tmp_path: Path,
    serve_in_thread: Callable[[Any], str],
) -> Iterator[tuple[KioskDriver, FakeState]]:
    from playwright.sync_api import sync_playwright

    app, state = build_fake_api(settings=Settings(data_dir=tmp_path / "data"))
    state.enrolled_ref = "sr_" + "a" * 26  # someone is enrolled: the fake API matches every palm to them
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


def _scan(kiosk: KioskDriver, expected_screen: str) -> str:
    kiosk.open("checkin.html")
    kiosk.page.click("#start-scan")
    kiosk.take_photo()
    kiosk.screen(expected_screen)
    return kiosk.page.inner_text("main")


def test_each_mode_sends_its_purpose(kiosk_and_api: tuple[KioskDriver, FakeState]) -> None:
    kiosk, state = kiosk_and_api
    kiosk.setup(key=FAKE_KEY, mode="entry")
    assert "checked in" in _scan(kiosk, "welcome")
    assert state.purposes_sent == [("entry", None)]
    kiosk.setup(key=FAKE_KEY, mode="age")
    assert "Age confirmed: 18 or older." in _scan(kiosk, "welcome")
    kiosk.shot("age-confirmed")
    state.meets_min_age = False
    text = _scan(kiosk, "welcome")
    assert "Staff will complete your age check." in text and "confirmed" not in text
    assert state.purposes_sent[1:] == [("age_check", "18"), ("age_check", "18")]
    kiosk.setup(key=FAKE_KEY, mode="pay")  # the till starts payments: a plain identification here
    _scan(kiosk, "welcome")
    assert state.purposes_sent[-1] == (None, None)


def test_a_purpose_without_consent_is_explained(kiosk_and_api: tuple[KioskDriver, FakeState]) -> None:
    kiosk, state = kiosk_and_api
    state.refuse_purpose = True
    kiosk.setup(key=FAKE_KEY, mode="age")
    assert "not set up for this" in _scan(kiosk, "not-recognised")
    kiosk.shot("purpose-not-consented")
