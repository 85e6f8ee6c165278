"""Helpers shared by the routes: OpenAPI bodies for multipart uploads, single-image forms, own-ref lookup."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from palmid.errors import NotFoundError, ValidationFailed
from palmid.privacy.refs import is_well_formed_ref
from palmid.service.deps import ServiceContext
from palmid.service.schemas import ErrorResponse
from palmid.service.uploads import UploadedForm, UploadLimits, read_multipart
from palmid.storage.records import Tenant

_ERROR_DESCRIPTIONS = {
    400: "Malformed request (body could not be parsed).",
    401: "Missing, unknown or revoked API key.",
    403: "The key lacks the scope, or the person did not consent to this purpose.",
    404: "Unknown subject reference (also for other merchants' refs: no existence oracle).",
    409: "Conflict (palm already enrolled, means of payment not linked).",
    413: "Upload too large.",
    415: "Unsupported image format.",
    422: "Invalid input, with a reason code (quality guidance, consent, card number, idempotency conflict, ...).",
    429: "Rate limited or locked out; see Retry-After.",
}
#: The ``{"error": {"code", "message"}}`` responses every authenticated v1 route documents (OpenAPI ``responses``).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description} for status, description in _ERROR_DESCRIPTIONS.items()
}


def multipart_body(*, properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    """``openapi_extra`` describing a ``multipart/form-data`` request body (parsed by hand, in memory)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": properties, "required": required}}
            },
        }
    }


IMAGE_PROPERTY: dict[str, Any] = {"type": "string", "format": "binary", "description": "A photo of the palm."}


async def read_single_image_form(request: Request, context: ServiceContext) -> tuple[bytes, UploadedForm]:
    """Parse a form with exactly one ``image`` file part (in memory)."""
    limits = UploadLimits(max_file_bytes=context.settings.max_image_bytes, max_files=1)
    form = await read_multipart(request, limits=limits)
    images = form.files_named("image")
    if len(images) != 1:
        raise ValidationFailed("send exactly one photo as the 'image' file part", code="image_required")
    return images[0], form


UNKNOWN_REF = "unknown subject reference"


def check_ref_shape(subject_ref: str) -> None:
    """A string that cannot be a ref is reported exactly like an unknown one (no oracle)."""
    if not is_well_formed_ref(subject_ref):
        raise NotFoundError(UNKNOWN_REF)


def resolve_own_ref(context: ServiceContext, *, tenant: Tenant, subject_ref: str) -> str:
    """The subject behind the calling merchant's ref. Unknown, erased and other merchants' refs all give the
    same 404 (one message, whatever the store says)."""
    try:
        return context.store.resolve_ref(subject_ref=subject_ref, tenant_id=tenant.tenant_id)
    except NotFoundError:
        raise NotFoundError(UNKNOWN_REF) from None
