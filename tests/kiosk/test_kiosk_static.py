"""Kiosk pages without a browser: routes, headers, notice, guidance, and the page sources themselves."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from palmid.capture.quality import GUIDANCE
from palmid.config import RetentionSettings, Settings
from palmid.kiosk import NOTICE_PURPOSES, NOTICE_VERSION, mount_kiosk, render_notice
from palmid.kiosk.mount import SERVICE_GUIDANCE, STATIC_DIR

if TYPE_CHECKING:
    from starlette.testclient import TestClient

PAGES = ("index.html", "enroll.html", "checkin.html", "mydata.html")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, retention=RetentionSettings(max_idle_days=200, max_total_days=700))


@pytest.fixture
def client(settings: Settings) -> TestClient:
    app = FastAPI()
    mount_kiosk(app, settings=settings)
    from starlette.testclient import TestClient

    return TestClient(app)


def test_kiosk_root_redirects_to_the_folder(client: TestClient) -> None:
    response = client.get("/kiosk", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/kiosk/"


@pytest.mark.parametrize("page", ["", *PAGES, "kiosk.js", "kiosk.css"])
def test_pages_are_served_with_a_same_origin_only_policy(client: TestClient, page: str) -> None:
    response = client.get(f"/kiosk/{page}")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["permissions-policy"].startswith("camera=(self)")
    assert response.headers["referrer-policy"] == "no-referrer"


def test_unknown_kiosk_file_is_404(client: TestClient) -> None:
    assert client.get("/kiosk/nope.html").status_code == 404


def test_notice_json_is_the_rendered_notice_with_its_hash(client: TestClient, settings: Settings) -> None:
    body = client.get("/kiosk/notice.json").json()
    notice = render_notice(settings=settings)
    assert body["version"] == NOTICE_VERSION == notice.version
    assert body["purposes"] == list(NOTICE_PURPOSES)
    assert body["sha256"] == hashlib.sha256(notice.text.encode()).hexdigest() == notice.sha256
    assert [section["heading"] for section in body["sections"]] == [s.heading for s in notice.sections]
    for section in body["sections"]:
        assert f"{section['heading']}\n{section['body']}" in notice.text


def test_notice_states_the_configured_retention_and_how_to_delete(settings: Settings) -> None:
    text = render_notice(settings=settings).text
    assert "200 days after you last use it" in text
    assert "700 days after you enrol" in text
    assert "Erase" in text and "My data" in text
    assert "usual way" in text  # declining has no penalty
    other = render_notice(settings=Settings(data_dir=settings.data_dir))
    assert other.sha256 != render_notice(settings=settings).sha256  # the hash covers what was shown


def test_notice_version_and_purposes_fit_the_consent_schema() -> None:
    from palmid.service.schemas import ConsentRequest

    consent = ConsentRequest(
        notice_version=NOTICE_VERSION, purposes=list(NOTICE_PURPOSES), accepted_at="2026-11-25T13:00:00Z"
    )
    assert consent.notice_version == NOTICE_VERSION


def test_guidance_json_is_the_capture_stage_guidance_plus_service_codes(client: TestClient) -> None:
    assert client.get("/kiosk/guidance.json").json() == {"guidance": {**GUIDANCE, **SERVICE_GUIDANCE}}
    assert "different_palm" in SERVICE_GUIDANCE  # per-photo code of POST /v1/enrollments


def test_javascript_fallback_guidance_mirrors_the_capture_stage() -> None:
    source = (STATIC_DIR / "kiosk.js").read_text()
    block = source[source.index("const FALLBACK_GUIDANCE = {") : source.index("};", source.index("FALLBACK"))]
    fallback = dict(re.findall(r'^\s*(\w+): "([^"]*)",$', block, flags=re.MULTILINE))
    published = {**GUIDANCE, **SERVICE_GUIDANCE}
    for code, text in fallback.items():
        assert published.get(code) == text, code
    for code in ("move_closer", "open_hand", "blurry", "no_hand"):
        assert code in fallback


class _PageAudit(HTMLParser):
    """Collects what accessibility and no-CDN checks need from one page."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.viewport = False
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.inputs: list[str] = []
        self.labels_for: set[str] = set()
        self.live_regions = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "meta" and values.get("name") == "viewport":
            self.viewport = True
        for name in ("src", "href", "action"):
            if name in values:
                self.urls.append(values[name])
        if tag == "script":
            self._in_script = "src" not in values
        if tag in {"input", "select", "textarea"}:
            self.inputs.append(values.get("id", ""))
        if tag == "label" and values.get("for"):
            self.labels_for.add(values["for"])
        if values.get("aria-live") or values.get("role") in {"status", "alert"}:
            self.live_regions += 1
        if any(name.startswith("on") for name in values):
            self.inline_scripts += 1

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


@pytest.mark.parametrize("page", PAGES)
def test_pages_are_local_labelled_and_script_free_inline(page: str) -> None:
    audit = _PageAudit()
    audit.feed((STATIC_DIR / page).read_text())
    assert audit.lang == "en"
    assert audit.viewport
    assert audit.inline_scripts == 0  # the CSP forbids inline scripts and handlers
    assert not [url for url in audit.urls if re.match(r"^(https?:)?//", url)], "no external CDN or URL"
    assert all(input_id and input_id in audit.labels_for for input_id in audit.inputs), "every control has a label"
    assert audit.live_regions >= 1


def test_static_assets_reference_no_external_hosts() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://", text), path.name


def _contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        if len(colour) == 4:  # #rgb
            colour = "#" + "".join(c * 2 for c in colour[1:])
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_colours_meet_wcag_aaa_contrast_for_text() -> None:
    css = (STATIC_DIR / "kiosk.css").read_text()
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})\s*;", css))
    pairs = [
        ("ink", "paper"),
        ("accent", "paper"),
        ("accent-ink", "accent"),
        ("muted", "paper"),
        ("ok", "paper"),
        ("bad", "paper"),
    ]
    for foreground, background in pairs:
        ratio = _contrast(colours[foreground], colours[background])
        assert ratio >= 7.0, f"{foreground} on {background}: {ratio:.1f}:1"
    # Tinted result and guidance boxes keep their text readable too.
    for tint in re.findall(r"background:\s*(#[0-9a-fA-F]{6})", css):
        assert _contrast(colours["ink"], tint) >= 7.0, tint
    assert _contrast(colours["ok"], "#e9f6ee") >= 7.0 and _contrast(colours["bad"], "#fdeeee") >= 7.0
