"""POST /v1/verifications: is this the palm of that person (the merchant's own ref)? Lockout after 5 failures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from palmid.errors import NotFoundError
from palmid.privacy.refs import hash_ref
from palmid.service.deps import SCOPE_VERIFY, Context, ServiceContext, require_scope
from palmid.service.routes.common import (
    ERROR_RESPONSES,
    IMAGE_PROPERTY,
    UNKNOWN_REF,
    check_ref_shape,
    multipart_body,
    read_single_image_form,
    resolve_own_ref,
)
from palmid.service.schemas import VerificationResponse
from palmid.storage.records import Tenant
from palmid.templates.template import Template

router = APIRouter(tags=["verifications"])

_OPENAPI = multipart_body(
    properties={
        "image": IMAGE_PROPERTY,
        "subject_ref": {"type": "string", "description": "The calling merchant's ref for the person."},
    },
    required=["image", "subject_ref"],
)


@router.post(
    "/v1/verifications",
    response_model=VerificationResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=_OPENAPI,
    summary="Verify a palm against one person (404 for unknown or other merchants' refs; lockout after failures)",
)
async def create_verification(
    request: Request, context: Context, tenant: Annotated[Tenant, Depends(require_scope(SCOPE_VERIFY))]
) -> VerificationResponse:
    image, form = await read_single_image_form(request, context)
    subject_ref = (form.field("subject_ref") or "").strip()
    check_ref_shape(subject_ref)
    response = await context.run_blocking(lambda: verify(context, tenant=tenant, subject_ref=subject_ref, image=image))
    context.metrics.count_decision(operation="verify", outcome="matched" if response.matched else "not_matched")
    return response


def verify(context: ServiceContext, *, tenant: Tenant, subject_ref: str, image: bytes) -> VerificationResponse:
    store = context.store
    subject_id = resolve_own_ref(context, tenant=tenant, subject_ref=subject_ref)
    store.check_not_locked(subject_id=subject_id, tenant_id=tenant.tenant_id, key_id=tenant.key_id)
    probe = context.recognizer.template_from_bytes(image)
    if subject_id not in context.matcher:  # erased while this request ran
        raise NotFoundError(UNKNOWN_REF)
    reference = Template.from_bytes(store.load_template(subject_id=subject_id))
    matched = context.matcher.verify(probe, reference)
    store.register_verification_result(
        subject_id=subject_id, tenant_id=tenant.tenant_id, key_id=tenant.key_id, matched=matched
    )
    if matched:
        store.touch_subject(subject_id=subject_id)
    store.append_audit(
        event="verify",
        tenant_id=tenant.tenant_id,
        subject_ref_hash=hash_ref(subject_ref),
        detail="matched" if matched else "not_matched",
    )
    return VerificationResponse(matched=matched)
