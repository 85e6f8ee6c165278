"""One error mapping for the service: every failure becomes ``{"error": {"code", "message"}}``.

* :class:`~palmid.errors.PalmidError` -> status from :func:`palmid.errors.http_status_for`, its code and message.
* Request validation errors (FastAPI / pydantic) -> 422 ``invalid_request`` (field names only, never values).
* Unknown paths / methods -> 404 ``not_found`` / 405 ``method_not_allowed``.
* Anything else -> 500 ``internal_error`` with no internals (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
import math
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from palmid.errors import PalmidError, RateLimitedError, http_status_for
from palmid.service.schemas import ErrorBody, ErrorResponse, ImageIssue

log = logging.getLogger(__name__)


class EnrollmentImagesRejected(PalmidError):
    """Some enrollment photos failed (quality, no palm, unreadable): one reason code per failing photo.

    The HTTP status and top-level code are those of the first failure (usually 422 ``poor_quality``).
    """

    default_code = "poor_quality"

    def __init__(self, message: str, *, code: str | None = None, status: int, images: tuple[ImageIssue, ...]):
        super().__init__(message, code=code)
        self.status = status
        self.images = images


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(*, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one JSON error envelope."""
    body = ErrorResponse(error=ErrorBody(code=code, message=message))
    return JSONResponse(status_code=status, content=body.model_dump(exclude_none=True), headers=headers)


def _palmid_error_response(error: PalmidError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    if isinstance(error, EnrollmentImagesRejected):
        body = ErrorResponse(error=ErrorBody(code=error.code, message=error.message, images=list(error.images)))
        return JSONResponse(status_code=error.status, content=body.model_dump(exclude_none=True))
    if error.code in {"unauthenticated", "key_revoked"}:
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(
        status=http_status_for(error), code=error.code, message=error.message, headers=headers or None
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on ``app``."""

    @app.exception_handler(PalmidError)
    async def _on_palmid_error(request: Request, exc: PalmidError) -> JSONResponse:
        return _palmid_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({".".join(str(part) for part in err.get("loc", ()) if part != "body") for err in exc.errors()})
        message = "invalid request" + (f": check {', '.join(f for f in fields if f)}" if any(fields) else "")
        return error_response(status=422, code="invalid_request", message=message)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(status=exc.status_code, code=code, message=message)

    app.add_middleware(CatchUnexpectedErrors)


class CatchUnexpectedErrors:
    """ASGI middleware: an unexpected exception becomes a bare 500 ``internal_error`` and is not re-raised.

    The log records the exception type and where it happened (stack frames), never its message or locals, which
    could carry request data.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("unhandled %s on %s %s\n%s", type(exc).__name__, scope.get("method"), scope.get("path"), frames)
            if started:
                raise
            response = error_response(status=500, code="internal_error", message="internal error")
            await response(scope, receive, send)
