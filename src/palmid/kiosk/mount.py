"""Serve the kiosk pages (static HTML/CSS/JS, no build step, no CDN) from the service itself at ``/kiosk``.

Routes added by :func:`mount_kiosk`:

* ``GET /kiosk`` -> redirect to ``/kiosk/``
* ``GET /kiosk/notice.json`` -> the consent notice (version, purposes, sections, SHA-256 of the exact text)
* ``GET /kiosk/guidance.json`` -> reason code -> plain-language guidance, from :mod:`palmid.capture.quality`
* ``/kiosk/*`` -> the static files in ``static/`` with a strict Content-Security-Policy (same origin only)

The kiosk has no key of its own: the operator stores the merchant's API key on the device (``/kiosk/#setup``);
the service never hands a key to a page, because one service serves many merchants.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from palmid.config import Settings
from palmid.kiosk.notice import render_notice

STATIC_DIR = Path(__file__).resolve().parent / "static"
KIOSK_PREFIX = "/kiosk"

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoticeSectionBody(_Frozen):
    heading: str
    body: str


class NoticeBody(_Frozen):
    version: str
    title: str
    purposes: list[str]
    sections: list[NoticeSectionBody]
    sha256: str


class GuidanceBody(_Frozen):
    guidance: dict[str, str]


class KioskStaticFiles(StaticFiles):
    """Static files with the kiosk's security headers on every response."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


SERVICE_GUIDANCE: Mapping[str, str] = {
    # POST /v1/enrollments: a photo that is good on its own but shows another palm than the others.
    "different_palm": "Please use the same hand for every photo.",
}
"""Per-photo reason codes that come from the service rather than from capture and detection."""


def load_guidance() -> dict[str, str]:
    """Reason code -> guidance text: the capture stage's :data:`~palmid.capture.quality.GUIDANCE` (the one source
    of that wording) plus the service's own per-photo codes."""
    from palmid.capture.quality import GUIDANCE

    return {**{str(code): str(text) for code, text in GUIDANCE.items()}, **SERVICE_GUIDANCE}


def mount_kiosk(app: FastAPI, *, settings: Settings) -> None:
    """Add the kiosk pages to ``app`` under ``/kiosk``. Call once from the app factory."""
    notice = render_notice(settings=settings)
    notice_body = NoticeBody(
        version=notice.version,
        title=notice.title,
        purposes=list(notice.purposes),
        sections=[NoticeSectionBody(heading=s.heading, body=s.body) for s in notice.sections],
        sha256=notice.sha256,
    )
    no_store = {**SECURITY_HEADERS, "Cache-Control": "no-store"}

    @app.get(KIOSK_PREFIX, include_in_schema=False)
    def kiosk_root() -> RedirectResponse:
        return RedirectResponse(url=f"{KIOSK_PREFIX}/", status_code=307)

    @app.get(f"{KIOSK_PREFIX}/notice.json", include_in_schema=False, response_model=NoticeBody)
    def kiosk_notice(response: Response) -> NoticeBody:
        response.headers.update(no_store)
        return notice_body

    @app.get(f"{KIOSK_PREFIX}/guidance.json", include_in_schema=False, response_model=GuidanceBody)
    def kiosk_guidance(response: Response) -> GuidanceBody:
        response.headers.update(no_store)
        return GuidanceBody(guidance=load_guidance())

    app.mount(KIOSK_PREFIX, KioskStaticFiles(directory=STATIC_DIR, html=True), name="kiosk")
