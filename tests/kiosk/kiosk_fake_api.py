"""A FAKE palmid API for page-level kiosk tests: same routes and JSON shapes as the service, canned decisions.

It recognises nobody by their palm: after an enrollment, every identification matches that one person until they
are erased. It records what the pages sent so tests can check the requests (consent, photos, key).
It exists only to test the pages; the real end-to-end test runs against ``palmid serve``.
"""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, File, Form, Header, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image

from palmid.config import Settings
from palmid.kiosk import mount_kiosk

FAKE_KEY = "fake-kiosk-key-0123456789"


@dataclass
class FakeState:
    enrolled_ref: str | None = None
    enrollments: list[dict[str, object]] = field(default_factory=list)
    photo_sizes_px: list[tuple[int, int]] = field(default_factory=list)
    identifications: int = 0
    erasures: list[str] = field(default_factory=list)
    reject_next_enrollment: list[dict[str, object]] = field(default_factory=list)
    export_available: bool = True
    purposes_sent: list[tuple[str | None, str | None]] = field(default_factory=list)
    """(purpose, min_age) form fields of each identification (issue 8)."""
    meets_min_age: bool = True
    refuse_purpose: bool = False


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message, **extra}})


def _photo_size(data: bytes) -> tuple[int, int]:
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("the kiosk must send JPEG photos")
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def build_fake_api(*, settings: Settings) -> tuple[FastAPI, FakeState]:
    app = FastAPI()
    state = FakeState()

    def authorised(header: str | None) -> bool:
        return header == f"Bearer {FAKE_KEY}"

    @app.post("/v1/enrollments")
    async def enroll(
        images: Annotated[list[UploadFile], File()],
        consent: Annotated[str, Form()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        if not authorised(authorization):
            return _error(401, "unauthenticated", "missing or unknown API key")
        parsed = json.loads(consent)
        photos = [await image.read() for image in images]
        state.enrollments.append({"consent": parsed, "images": len(photos)})
        state.photo_sizes_px.extend(_photo_size(photo) for photo in photos)
        if not 3 <= len(photos) <= 10:
            return _error(422, "invalid_request", "3 to 10 images")
        if state.reject_next_enrollment:
            issues, state.reject_next_enrollment = state.reject_next_enrollment, []
            return _error(422, "poor_quality", "some photos are not good enough", images=issues)
        if state.enrolled_ref is not None:
            return _error(409, "already_enrolled", "this palm is already enrolled")
        state.enrolled_ref = "ref_" + secrets.token_hex(8)
        return JSONResponse(status_code=201, content={"subject_ref": state.enrolled_ref})

    @app.post("/v1/identifications")
    async def identify(
        image: Annotated[UploadFile, File()],
        authorization: Annotated[str | None, Header()] = None,
        purpose: Annotated[str | None, Form()] = None,
        min_age: Annotated[str | None, Form()] = None,
    ) -> JSONResponse:
        if not authorised(authorization):
            return _error(401, "unauthenticated", "missing or unknown API key")
        state.photo_sizes_px.append(_photo_size(await image.read()))
        state.identifications += 1
        state.purposes_sent.append((purpose, min_age))
        ref = state.enrolled_ref
        if purpose is not None and ref is not None and state.refuse_purpose:
            return _error(403, "purpose_not_consented", "this person did not consent to this purpose")
        if purpose == "age_check":
            return JSONResponse(
                {
                    "purpose": purpose,
                    "matched": ref is not None,
                    "meets_min_age": ref is not None and state.meets_min_age,
                }
            )
        if purpose == "entry":
            return JSONResponse(
                {"purpose": purpose, "matched": ref is not None, "subject_ref": ref, "membership_id": None}
            )
        return JSONResponse({"matched": ref is not None, "subject_ref": ref})

    @app.get("/v1/subjects/{subject_ref}/export")
    def export(subject_ref: str, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        if not authorised(authorization):
            return _error(401, "unauthenticated", "missing or unknown API key")
        if not state.export_available or subject_ref != state.enrolled_ref:
            return _error(404, "not_found", "not found")
        consent = state.enrollments[-1]["consent"]
        return JSONResponse(
            {
                "subject_ref": subject_ref,
                "enrolled_at": "2026-11-25T13:00:00Z",
                "consents": [consent],
                "merchants_with_a_ref": 1,
                "events": [{"event": "enroll", "at": "2026-11-25T13:00:00Z"}],
            }
        )

    @app.delete("/v1/subjects/{subject_ref}")
    def erase(subject_ref: str, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        if not authorised(authorization):
            return _error(401, "unauthenticated", "missing or unknown API key")
        if subject_ref != state.enrolled_ref:
            return _error(404, "not_found", "not found")
        state.enrolled_ref = None
        state.erasures.append(subject_ref)
        erased_at = datetime.now(UTC).isoformat()
        payload = json.dumps({"subject_ref": subject_ref, "erased_at": erased_at}, sort_keys=True)
        return JSONResponse(
            {
                "subject_ref": subject_ref,
                "erased_at": erased_at,
                "destroyed": ["data_key", "template", "index_entry"],
                "payload": payload,
                "signature": "ZmFrZS1zaWduYXR1cmU=",
                "public_key": "ZmFrZS1wdWJsaWMta2V5",
                "algorithm": "Ed25519",
            }
        )

    mount_kiosk(app, settings=settings)
    return app, state
