"""POST /v1/enrollments: consent first, then photos -> one template, duplicate check, atomic store.

Order matters and is the privacy promise:

1. the consent is validated and recorded (an immutable row) before any photo is decoded: no consent, no
   biometric processing;
2. the photos become templates in the recognition thread pool, in memory only;
3. the new template is searched against the gallery with the identification threshold (duplicate palm -> 409,
   without saying whose);
4. subject and encrypted template are stored in one transaction, linked to the consent, and the palm joins the
   index.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from palmid.errors import ConflictError, ConsentError, ImageError, InputError, ValidationFailed, http_status_for
from palmid.kiosk import NOTICE_VERSION, render_notice
from palmid.privacy.consent import ConsentInput, build_consent
from palmid.service.deps import SCOPE_ENROLL, Context, ServiceContext, require_scope
from palmid.service.errors import EnrollmentImagesRejected
from palmid.service.routes.common import ERROR_RESPONSES, IMAGE_PROPERTY, multipart_body
from palmid.service.schemas import ConsentRequest, EnrollmentResponse, ImageIssue
from palmid.service.search_codes import search_code_for
from palmid.service.uploads import UploadLimits, read_multipart
from palmid.storage.records import EnrolledSubject, Tenant
from palmid.templates.template import Template

log = logging.getLogger(__name__)
router = APIRouter(tags=["enrollments"])

MIN_ENROLL_IMAGES = 3
MAX_ENROLL_IMAGES = 10

_OPENAPI = multipart_body(
    properties={
        "images": {
            "type": "array",
            "items": IMAGE_PROPERTY,
            "minItems": MIN_ENROLL_IMAGES,
            "maxItems": MAX_ENROLL_IMAGES,
            "description": "3 to 10 photos of the same palm (processed in memory, never stored).",
        },
        "consent": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": 'JSON: {"notice_version": "2026-01", "purposes": ["payment"], "accepted_at": "<ISO 8601>"}',
        },
    },
    required=["images", "consent"],
)


@router.post(
    "/v1/enrollments",
    status_code=201,
    response_model=EnrollmentResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=_OPENAPI,
    summary="Enroll a palm (consent first; 409 if the palm is already enrolled)",
)
async def create_enrollment(
    request: Request, context: Context, tenant: Annotated[Tenant, Depends(require_scope(SCOPE_ENROLL))]
) -> EnrollmentResponse:
    limits = UploadLimits(max_file_bytes=context.settings.max_image_bytes, max_files=MAX_ENROLL_IMAGES)
    form = await read_multipart(request, limits=limits)
    consent = parse_consent(form.field("consent"), context=context)
    photos = form.files_named("images")
    if not MIN_ENROLL_IMAGES <= len(photos) <= MAX_ENROLL_IMAGES:
        raise ValidationFailed(
            f"send {MIN_ENROLL_IMAGES} to {MAX_ENROLL_IMAGES} photos of the same palm as 'images'",
            code="wrong_image_count",
        )
    # The consent is on record before any photo is decoded.
    consent_id = await context.run_storage(
        lambda: context.store.record_consent(tenant_id=tenant.tenant_id, consent=consent)
    )
    template = await context.run_blocking(lambda: build_enrollment_template(context, photos))
    enrolled = await context.run_blocking(
        lambda: store_if_new(context, tenant=tenant, consent_id=consent_id, template=template)
    )
    context.metrics.count_decision(operation="enroll", outcome="enrolled")
    return EnrollmentResponse(subject_ref=enrolled.subject_ref)


def parse_consent(raw: str | None, *, context: ServiceContext) -> ConsentInput:
    """The ``consent`` field -> a validated :class:`ConsentInput` (ConsentError otherwise). No image is touched."""
    if raw is None or not raw.strip():
        context.metrics.count_decision(operation="enroll", outcome="consent_refused")
        raise ConsentError("explicit consent is required before enrollment", code="consent_required")
    try:
        request = ConsentRequest.model_validate(json.loads(raw))
        notice_text = None
        if request.notice_version == NOTICE_VERSION:  # the notice the kiosk shows, with configured retention terms
            notice = render_notice(settings=context.settings)
            if not set(request.purposes) <= set(notice.purposes):
                raise ConsentError("consent names a purpose that the notice does not", code="consent_invalid")
            notice_text = notice.text
        return build_consent(
            notice_version=request.notice_version,
            purposes=request.purposes,
            accepted_at=request.accepted_at,
            now=context.now(),
            notice_text=notice_text,
        )
    except (ValueError, ValidationError, ConsentError) as exc:  # json.JSONDecodeError is a ValueError
        context.metrics.count_decision(operation="enroll", outcome="consent_refused")
        message = (
            exc.message
            if isinstance(exc, ConsentError)
            else "consent must be JSON with notice_version, purposes, accepted_at"
        )
        raise ConsentError(message, code="consent_invalid") from None


def build_enrollment_template(context: ServiceContext, photos: tuple[bytes, ...]) -> Template:
    """Every photo -> template (all are tried, so the kiosk gets a reason per photo), checked to be one palm, merged."""
    templates: list[Template] = []
    failures: list[tuple[int, InputError]] = []
    for index, photo in enumerate(photos):
        try:
            templates.append(context.recognizer.template_from_bytes(photo))
        except InputError as exc:
            failures.append((index, exc))
    if failures:
        raise _rejection(failures)
    outliers = context.matcher.inconsistent_samples(templates)
    if outliers:
        raise EnrollmentImagesRejected(
            "the photos do not all show the same palm",
            code="inconsistent_images",
            status=422,
            images=tuple(ImageIssue(index=index, code="different_palm") for index in outliers),
        )
    return context.recognizer.merge(templates)


def _rejection(failures: list[tuple[int, InputError]]) -> EnrollmentImagesRejected:
    issues = tuple(ImageIssue(index=index, code=error.code) for index, error in failures)
    unreadable = [error for _, error in failures if isinstance(error, ImageError)]
    if unreadable:
        first = unreadable[0]
        return EnrollmentImagesRejected(
            "some photos could not be read", code=first.code, status=http_status_for(first), images=issues
        )
    return EnrollmentImagesRejected(
        "some photos are not good enough: see the reason for each photo", code="poor_quality", status=422, images=issues
    )


def store_if_new(context: ServiceContext, *, tenant: Tenant, consent_id: str, template: Template) -> EnrolledSubject:
    """Duplicate check and atomic store, serialised so two enrollments of one palm cannot both pass."""
    with context.enrollment_lock:
        if context.matcher.identify(template) is not None:
            context.metrics.count_decision(operation="enroll", outcome="already_enrolled")
            raise ConflictError("this palm is already enrolled", code="already_enrolled")
        code = search_code_for(context.matcher, template)  # stored with the template: start-up reads only codes
        enrolled = context.store.enroll_subject(
            tenant_id=tenant.tenant_id,
            consent_id=consent_id,
            template=template.to_bytes(),
            search_code=None if code is None else code.code,
            search_code_format=None if code is None else code.code_format,
        )
        context.matcher.add(enrolled.subject_id, template)
    log.info("enrollment stored", extra={"tenant_id": tenant.tenant_id})
    return enrolled
