"""Pairwise refs in the store (lookup by SHA-256 of the ref)."""

from __future__ import annotations

import hmac

from sqlalchemy import select

from palmid.errors import NotFoundError
from palmid.privacy.refs import compute_ref, hash_ref, is_well_formed_ref
from palmid.storage.models import SubjectRefRow, SubjectRow, TenantRow
from palmid.storage.subjects import SubjectDeps


def ref_for(deps: SubjectDeps, *, subject_id: str, tenant_id: str) -> str:
    """The subject's ref for the tenant, recorded (once) in the lookup table."""
    ref = compute_ref(secret=deps.keyring.ref_secret, subject_id=subject_id, tenant_id=tenant_id)
    digest = hash_ref(ref)
    with deps.write() as session:
        if session.get(SubjectRow, subject_id) is None:
            raise NotFoundError("unknown subject")
        if session.get(TenantRow, tenant_id) is None:
            raise NotFoundError("unknown tenant")
        known = session.scalar(
            select(SubjectRefRow.id).where(SubjectRefRow.tenant_id == tenant_id, SubjectRefRow.ref_sha256 == digest)
        )
        if known is None:
            session.add(SubjectRefRow(tenant_id=tenant_id, ref_sha256=digest, subject_id=subject_id))
    return ref


def resolve_ref(deps: SubjectDeps, *, subject_ref: str, tenant_id: str) -> str:
    """subject_id for the tenant's ref (recomputed and compared in constant time); NotFoundError otherwise."""
    if not is_well_formed_ref(subject_ref):
        raise NotFoundError("unknown subject")
    with deps.read() as session:
        subject_id = session.scalar(
            select(SubjectRefRow.subject_id).where(
                SubjectRefRow.tenant_id == tenant_id, SubjectRefRow.ref_sha256 == hash_ref(subject_ref)
            )
        )
    if subject_id is None:
        raise NotFoundError("unknown subject")
    expected = compute_ref(secret=deps.keyring.ref_secret, subject_id=subject_id, tenant_id=tenant_id)
    if not hmac.compare_digest(expected, subject_ref):
        raise NotFoundError("unknown subject")
    return subject_id
