"""Data-subject rights through the merchant's own ref (scope ``erase``).

* ``DELETE /v1/subjects/{subject_ref}``: one-call erasure with a signed receipt (crypto-shredding + index removal).
* ``GET /v1/subjects/{subject_ref}/export``: everything stored about the person except template bytes.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends

from palmid.privacy.receipts import RECEIPT_VERSION
from palmid.privacy.refs import hash_ref
from palmid.service.deps import SCOPE_ERASE, Context, ServiceContext, require_scope
from palmid.service.routes.common import ERROR_RESPONSES, check_ref_shape, resolve_own_ref
from palmid.service.schemas import (
    ConsentRecordResponse,
    ErasureReceiptResponse,
    SubjectEventResponse,
    SubjectExportResponse,
)
from palmid.storage.records import Tenant

log = logging.getLogger(__name__)
router = APIRouter(tags=["subjects"])


@router.delete(
    "/v1/subjects/{subject_ref}",
    response_model=ErasureReceiptResponse,
    responses=ERROR_RESPONSES,
    summary="Erase a person everywhere (signed Ed25519 receipt)",
)
async def erase_subject(
    subject_ref: str, context: Context, tenant: Annotated[Tenant, Depends(require_scope(SCOPE_ERASE))]
) -> ErasureReceiptResponse:
    check_ref_shape(subject_ref)
    receipt = await context.run_storage(lambda: erase(context, tenant=tenant, subject_ref=subject_ref))
    context.metrics.count_decision(operation="erase", outcome="erased")
    return receipt


def erase(context: ServiceContext, *, tenant: Tenant, subject_ref: str) -> ErasureReceiptResponse:
    """Take the palm out of the index first (no match from now on, through any merchant), then shred and delete."""
    subject_id = resolve_own_ref(context, tenant=tenant, subject_ref=subject_ref)
    context.matcher.remove(subject_id)
    receipt = context.store.erase_subject(subject_id=subject_id, tenant_id=tenant.tenant_id)
    log.info("subject erased", extra={"tenant_id": tenant.tenant_id})
    return ErasureReceiptResponse(
        version=RECEIPT_VERSION,
        receipt_id=receipt.receipt_id,
        subject_ref=receipt.subject_ref,
        tenant_id=receipt.tenant_id,
        erased_at=receipt.erased_at,
        destroyed=list(receipt.destroyed),
        consent_record_sha256=receipt.consent_record_sha256,
        public_key=receipt.public_key,
        signature=receipt.signature,
    )


@router.get(
    "/v1/subjects/{subject_ref}/export",
    response_model=SubjectExportResponse,
    responses=ERROR_RESPONSES,
    summary="Export what is stored about a person (no template bytes; access and portability)",
)
async def export_subject(
    subject_ref: str, context: Context, tenant: Annotated[Tenant, Depends(require_scope(SCOPE_ERASE))]
) -> SubjectExportResponse:
    check_ref_shape(subject_ref)
    return await context.run_storage(lambda: export(context, tenant=tenant, subject_ref=subject_ref))


def export(context: ServiceContext, *, tenant: Tenant, subject_ref: str) -> SubjectExportResponse:
    subject_id = resolve_own_ref(context, tenant=tenant, subject_ref=subject_ref)
    stored = context.store.export_subject(subject_id=subject_id, tenant_id=tenant.tenant_id)
    context.store.append_audit(
        event="export", tenant_id=tenant.tenant_id, subject_ref_hash=hash_ref(subject_ref), detail="exported"
    )
    consent = stored.consent
    links = context.store.load_attributes(subject_id=subject_id, tenant_id=tenant.tenant_id)
    linked = [kind for kind in ("payment_token", "membership_id", "date_of_birth") if getattr(links, kind)]
    return SubjectExportResponse(
        subject_ref=stored.subject_ref,
        enrolled_at=stored.enrolled_at,
        last_interaction_at=stored.last_interaction_at,
        delete_by=stored.delete_by,
        template_count=stored.template_count,
        consent=ConsentRecordResponse(
            notice_version=consent.notice_version,
            notice_sha256=consent.notice_sha256,
            purposes=list(consent.purposes),
            retention_days=consent.retention_days,
            accepted_at=consent.accepted_at,
            recorded_at=consent.recorded_at,
            given_at_this_merchant=consent.given_at_this_merchant,
        ),
        linked=linked,
        membership_id=links.membership_id,
        events=[SubjectEventResponse(at=event.at, event=event.event, detail=event.detail) for event in stored.events],
    )
