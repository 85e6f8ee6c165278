"""The one error mapping: PalmidError -> status + code, validation -> 422, anything else -> bare 500."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from service_helpers import make_client

from palmid.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    ImageError,
    NotFoundError,
    PalmidError,
    QualityError,
    RateLimitedError,
    StorageError,
)
from palmid.service.errors import EnrollmentImagesRejected, install_error_handlers
from palmid.service.schemas import ImageIssue

SECRET = "internal-detail-4f2a"


class Body(BaseModel):
    count: int


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise")
    def raise_it() -> None:
        raise error

    @app.post("/validate")
    def validate(body: Body) -> dict[str, int]:
        return {"count": body.count}

    return app


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (AuthError("no key"), 401, "unauthenticated"),
        (AuthError("revoked", code="key_revoked"), 401, "key_revoked"),
        (ForbiddenError("scope", code="forbidden_scope"), 403, "forbidden_scope"),
        (NotFoundError("unknown subject reference"), 404, "not_found"),
        (ConflictError("dup", code="already_enrolled"), 409, "already_enrolled"),
        (ImageError("big", code="image_too_large"), 413, "image_too_large"),
        (QualityError("closer", code="move_closer"), 422, "move_closer"),
        (RateLimitedError("slow", code="locked_out", retry_after_s=30.2), 429, "locked_out"),
        (StorageError("db down"), 503, "storage_unavailable"),
        (PalmidError("boom"), 500, "internal_error"),
    ],
)
def test_palmid_errors_map_to_status_and_code(error: PalmidError, status: int, code: str) -> None:
    response = make_client(_app(error)).get("/raise")
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": error.message}}


def test_rate_limits_carry_retry_after() -> None:
    response = make_client(_app(RateLimitedError("slow", retry_after_s=12.1))).get("/raise")
    assert response.headers["retry-after"] == "13"


def test_unauthenticated_carries_www_authenticate() -> None:
    response = make_client(_app(AuthError("no key"))).get("/raise")
    assert response.headers["www-authenticate"] == "Bearer"


def test_enrollment_rejection_lists_each_image() -> None:
    error = EnrollmentImagesRejected(
        "photos", code="poor_quality", status=422, images=(ImageIssue(index=1, code="move_closer"),)
    )
    response = make_client(_app(error)).get("/raise")
    assert response.status_code == 422
    assert response.json() == {
        "error": {"code": "poor_quality", "message": "photos", "images": [{"index": 1, "code": "move_closer"}]}
    }


def test_validation_errors_are_invalid_request_without_values() -> None:
    response = make_client(_app(PalmidError("x"))).post("/validate", json={"count": SECRET})
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "invalid_request"
    assert SECRET not in response.text


def test_unknown_errors_are_bare_500s_and_the_log_has_no_message(caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(_app(RuntimeError(SECRET)), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR):
        response = client.get("/raise")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert SECRET not in response.text
    assert "RuntimeError" in caplog.text
    assert SECRET not in caplog.text


def test_unknown_routes_use_the_envelope() -> None:
    response = make_client(_app(PalmidError("x"))).get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
