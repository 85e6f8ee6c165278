"""POST /v1/identifications: who is this palm, for the calling merchant? A decision and its own ref, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from palmid.errors import NotFoundError
from palmid.privacy.refs import hash_ref
from palmid.service.deps import SCOPE_IDENTIFY, Context, ServiceContext, require_scope
from palmid.service.routes.common import ERROR_RESPONSES, IMAGE_PROPERTY, multipart_body, read_single_image_form
from palmid.service.routes.purposes import PURPOSE_FORM_PROPERTIES, PurposeResponse, identify_for_purpose
from palmid.service.schemas import IdentificationResponse
from palmid.storage.records import Tenant

router = APIRouter(tags=["identifications"])


@router.post(
    "/v1/identifications",
    response_model=IdentificationResponse | PurposeResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=multipart_body(properties={"image": IMAGE_PROPERTY, **PURPOSE_FORM_PROPERTIES}, required=["image"]),
    summary="Identify a palm among everyone enrolled (rate-limited per API key)",
)
async def create_identification(
    request: Request, context: Context, tenant: Annotated[Tenant, Depends(require_scope(SCOPE_IDENTIFY))]
) -> IdentificationResponse | PurposeResponse:
    context.identify_limiter.acquire(tenant.key_id)
    image, form = await read_single_image_form(request, context)
    if form.field("purpose") is not None:  # issue 8: entry / payment / age_check (routes/purposes.py)
        return await identify_for_purpose(request, context, tenant=tenant, image=image, form=form)
    response = await context.run_blocking(lambda: identify(context, tenant=tenant, image=image))
    context.metrics.count_decision(operation="identify", outcome="matched" if response.matched else "not_matched")
    return response


def identify(context: ServiceContext, *, tenant: Tenant, image: bytes) -> IdentificationResponse:
    probe = context.recognizer.template_from_bytes(image)
    subject_id = context.matcher.identify(probe)
    if subject_id is None:
        return not_matched(context, tenant=tenant)
    try:
        subject_ref = context.store.ref_for(subject_id=subject_id, tenant_id=tenant.tenant_id)
    except NotFoundError:  # erased meanwhile (e.g. by the retention sweep): never a match again
        context.matcher.remove(subject_id)
        return not_matched(context, tenant=tenant)
    context.store.touch_subject(subject_id=subject_id)
    context.store.append_audit(
        event="identify", tenant_id=tenant.tenant_id, subject_ref_hash=hash_ref(subject_ref), detail="matched"
    )
    return IdentificationResponse(matched=True, subject_ref=subject_ref)


def not_matched(context: ServiceContext, *, tenant: Tenant) -> IdentificationResponse:
    context.store.append_audit(
        event="identify", tenant_id=tenant.tenant_id, subject_ref_hash=None, detail="not_matched"
    )
    return IdentificationResponse(matched=False, subject_ref=None)
