"""Subject operations used by the Store: enroll (one transaction), decrypt templates, erase (crypto-shred)."""

from __future__ import annotations

import json
import uuid
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from palmid.errors import ConsentError, CryptoError, NotFoundError, ValidationFailed
from palmid.privacy.audit import append_event
from palmid.privacy.consent import MAX_CONSENT_AGE, ConsentInput, consent_record_sha256
from palmid.privacy.receipts import ErasureReceipt
from palmid.privacy.refs import compute_ref, hash_ref
from palmid.storage.crypto import PURPOSE_TEMPLATE, new_data_key, seal, search_code_purpose
from palmid.storage.keyring import Keyring
from palmid.storage.keystore import Keystore
from palmid.storage.models import (
    AuditEventRow,
    ConsentRow,
    LockoutRow,
    PendingKeyDestructionRow,
    SearchCodeRow,
    SubjectAttributeRow,
    SubjectRefRow,
    SubjectRow,
    TemplateRow,
    TenantRow,
)
from palmid.storage.records import ConsentRecord, EnrolledSubject, RetentionErasure, SubjectEvent, SubjectExport

#: Longest accepted search-code format label (the ``search_codes.code_format`` column).
MAX_CODE_FORMAT_CHARS = 64


class SessionOpener(Protocol):
    def __call__(self) -> AbstractContextManager[Session]: ...


@dataclass(frozen=True, kw_only=True)
class SubjectDeps:
    """What subject operations need from the store."""

    write: SessionOpener
    read: SessionOpener
    keyring: Keyring
    keystore: Keystore
    retention_days: int
    max_idle_days: int


def data_key_context(subject_id: str) -> bytes:
    """What a subject's wrapped data key is bound to (unwrapping it for another subject fails)."""
    return f"palmid-dek|{subject_id}".encode()


def data_key_for(deps: SubjectDeps, *, subject_id: str, wrapped: bytes | None) -> bytes:
    """Unwrap the subject's data key; CryptoError(key_unavailable) when it was destroyed."""
    if wrapped is None:
        raise CryptoError("no data key for this subject (erased?)", code="key_unavailable")
    return deps.keyring.key_provider.unwrap_key(wrapped=wrapped, context=data_key_context(subject_id))


def consent_row(
    *, consent_id: str, tenant_id: str, consent: ConsentInput, retention_days: int, now: datetime
) -> ConsentRow:
    return ConsentRow(
        id=consent_id,
        tenant_id=tenant_id,
        notice_version=consent.notice_version,
        notice_sha256=consent.notice_sha256,
        purposes=json.dumps(list(consent.purposes)),
        retention_days=retention_days,
        accepted_at=consent.accepted_at,
        recorded_at=now,
    )


def record_consent(deps: SubjectDeps, *, tenant_id: str, consent: ConsentInput, now: datetime) -> str:
    """Store an immutable consent record in its own transaction; returns its id."""
    consent_id = uuid.uuid4().hex
    with deps.write() as session:
        if session.get(TenantRow, tenant_id) is None:
            raise NotFoundError("unknown tenant")
        session.add(
            consent_row(
                consent_id=consent_id, tenant_id=tenant_id, consent=consent, retention_days=deps.retention_days, now=now
            )
        )
        append_event(
            session,
            event="consent",
            tenant_id=tenant_id,
            subject_ref_hash=None,
            detail=f"consent={consent_id} notice={consent.notice_version}",
            now=now,
        )
    return consent_id


def _claim_consent(session: Session, *, consent_id: str, tenant_id: str, now: datetime) -> ConsentRow:
    row = session.get(ConsentRow, consent_id)
    if row is None or row.tenant_id != tenant_id:
        raise ConsentError("unknown consent record", code="consent_invalid")
    if session.scalar(select(SubjectRow.id).where(SubjectRow.consent_id == consent_id)) is not None:
        raise ConsentError("this consent record was already used", code="consent_invalid")
    if row.recorded_at < now - MAX_CONSENT_AGE:
        raise ConsentError("consent is too old: accept the notice again", code="consent_invalid")
    return row


def enroll(
    deps: SubjectDeps,
    *,
    tenant_id: str,
    template: bytes,
    now: datetime,
    consent: ConsentInput | None,
    consent_id: str | None,
    search_code: bytes | None = None,
    search_code_format: str | None = None,
) -> EnrolledSubject:
    """Write (consent +) subject + encrypted template + pairwise ref + audit event in ONE transaction.

    Either ``consent`` (recorded in this transaction) or ``consent_id`` (recorded earlier by
    :func:`record_consent`, same tenant, unused) must be given. The wrapped data key goes to the keystore first;
    if the main transaction fails it is destroyed again, so a failure at any point leaves neither a half-enrolled
    subject nor an orphan template.
    """
    if not template:
        raise ValidationFailed("empty template")
    if (search_code is None) != (search_code_format is None) or search_code == b"" or search_code_format == "":
        raise ValidationFailed("give both search_code and search_code_format (non-empty), or neither")
    if search_code_format is not None and len(search_code_format) > MAX_CODE_FORMAT_CHARS:
        raise ValidationFailed(f"search_code_format is longer than {MAX_CODE_FORMAT_CHARS} characters")
    if (consent is None) == (consent_id is None):
        raise ValidationFailed("give exactly one of consent or consent_id")
    subject_id = uuid.uuid4().hex
    data_key = new_data_key()
    wrapped = deps.keyring.key_provider.wrap_key(data_key=data_key, context=data_key_context(subject_id))
    deps.keystore.put(
        subject_id=subject_id, wrapped_key=wrapped, master_key_id=deps.keyring.key_provider.key_id, created_at=now
    )
    ref = compute_ref(secret=deps.keyring.ref_secret, subject_id=subject_id, tenant_id=tenant_id)
    try:
        with deps.write() as session:
            if session.get(TenantRow, tenant_id) is None:
                raise NotFoundError("unknown tenant")
            if consent is not None:
                row = consent_row(
                    consent_id=uuid.uuid4().hex,
                    tenant_id=tenant_id,
                    consent=consent,
                    retention_days=deps.retention_days,
                    now=now,
                )
                session.add(row)
                session.flush()
            else:
                row = _claim_consent(session, consent_id=str(consent_id), tenant_id=tenant_id, now=now)
            session.add(
                SubjectRow(
                    id=subject_id,
                    consent_id=row.id,
                    enrolled_tenant_id=tenant_id,
                    created_at=now,
                    last_interaction_at=now,
                )
            )
            session.flush()
            sealed = seal(data_key=data_key, plaintext=template, subject_id=subject_id, purpose=PURPOSE_TEMPLATE)
            template_row = TemplateRow(subject_id=subject_id, ciphertext=sealed, created_at=now)
            session.add(template_row)
            session.flush()
            if search_code is not None and search_code_format is not None:
                session.add(
                    sealed_search_code(
                        data_key=data_key,
                        template_id=template_row.id,
                        subject_id=subject_id,
                        code=search_code,
                        code_format=search_code_format,
                        now=now,
                    )
                )
            session.add(SubjectRefRow(tenant_id=tenant_id, ref_sha256=hash_ref(ref), subject_id=subject_id))
            session.flush()
            append_event(
                session,
                event="enroll",
                tenant_id=tenant_id,
                subject_ref_hash=hash_ref(ref),
                detail=f"consent={row.id} notice={row.notice_version}",
                now=now,
            )
    except BaseException:
        with suppress(Exception):
            deps.keystore.destroy(subject_ids=[subject_id])
        raise
    return EnrolledSubject(subject_id=subject_id, subject_ref=ref)


def sealed_search_code(
    *, data_key: bytes, template_id: int, subject_id: str, code: bytes, code_format: str, now: datetime
) -> SearchCodeRow:
    """The row of a search code sealed under the subject's data key (purpose bound to ``code_format``)."""
    purpose = search_code_purpose(code_format)
    sealed = seal(data_key=data_key, plaintext=code, subject_id=subject_id, purpose=purpose)
    return SearchCodeRow(
        template_id=template_id, subject_id=subject_id, code_format=code_format, ciphertext=sealed, created_at=now
    )


def delete_unused_consents(deps: SubjectDeps, *, older_than: datetime) -> int:
    """Delete consent records never followed by an enrollment (they hold no biometric data)."""
    with deps.write() as session:
        used = select(SubjectRow.consent_id)
        result = session.execute(
            delete(ConsentRow).where(ConsentRow.recorded_at < older_than, ConsentRow.id.not_in(used))
        )
    return int(getattr(result, "rowcount", 0) or 0)


def count(deps: SubjectDeps) -> int:
    """How many subjects are enrolled."""
    with deps.read() as session:
        return int(session.scalar(select(func.count()).select_from(SubjectRow)) or 0)


def touch(deps: SubjectDeps, *, subject_id: str, now: datetime) -> None:
    """Record an interaction (``last_interaction_at``, for the retention schedule); NotFoundError if unknown."""
    with deps.write() as session:
        subject = session.get(SubjectRow, subject_id)
        if subject is None:
            raise NotFoundError("unknown subject")
        subject.last_interaction_at = now


def erase_due(deps: SubjectDeps, *, now: datetime, limit: int) -> list[RetentionErasure]:
    """Erase (receipts, audit events, crypto-shredding) at most ``limit`` people past their retention schedule."""
    erased: list[RetentionErasure] = []
    for subject_id, tenant_id in due_for_erasure(deps, now=now, limit=limit):
        with suppress(NotFoundError):  # erased concurrently
            receipt = erase(deps, subject_id=subject_id, tenant_id=tenant_id, now=now)
            erased.append(RetentionErasure(subject_id=subject_id, receipt=receipt))
    return erased


def erase(deps: SubjectDeps, *, subject_id: str, tenant_id: str, now: datetime) -> ErasureReceipt:
    """Delete every row of the subject (one transaction, with the audit event), then destroy the data key."""
    receipt_id = uuid.uuid4().hex
    ref = compute_ref(secret=deps.keyring.ref_secret, subject_id=subject_id, tenant_id=tenant_id)
    with deps.write() as session:
        subject = session.get(SubjectRow, subject_id)
        if subject is None:
            raise NotFoundError("unknown subject")
        consent = session.get(ConsentRow, subject.consent_id)
        if consent is None:
            raise NotFoundError("unknown subject")
        consent_hash = consent_record_sha256(
            consent_id=consent.id,
            tenant_id=consent.tenant_id,
            consent=ConsentInput(
                notice_version=consent.notice_version,
                notice_sha256=consent.notice_sha256,
                purposes=tuple(json.loads(consent.purposes)),
                accepted_at=consent.accepted_at,
            ),
            retention_days=consent.retention_days,
            recorded_at=consent.recorded_at,
        )
        n_templates = _count(session, TemplateRow.subject_id == subject_id, TemplateRow)
        n_refs = _count(session, SubjectRefRow.subject_id == subject_id, SubjectRefRow)
        n_attributes = _count(session, SubjectAttributeRow.subject_id == subject_id, SubjectAttributeRow)
        session.execute(delete(LockoutRow).where(LockoutRow.subject_id == subject_id))
        session.execute(delete(SubjectAttributeRow).where(SubjectAttributeRow.subject_id == subject_id))
        session.execute(delete(SearchCodeRow).where(SearchCodeRow.subject_id == subject_id))
        session.execute(delete(TemplateRow).where(TemplateRow.subject_id == subject_id))
        if session.get(PendingKeyDestructionRow, subject_id) is None:  # repaired at open if the key outlives us
            session.add(PendingKeyDestructionRow(subject_id=subject_id, created_at=now))
        session.execute(delete(SubjectRefRow).where(SubjectRefRow.subject_id == subject_id))
        session.execute(delete(SubjectRow).where(SubjectRow.id == subject_id))
        session.execute(delete(ConsentRow).where(ConsentRow.id == consent.id))
        append_event(
            session,
            event="erase",
            tenant_id=tenant_id,
            subject_ref_hash=hash_ref(ref),
            detail=f"receipt={receipt_id} consent_sha256={consent_hash}",
            now=now,
        )
    destroyed_keys = deps.keystore.destroy(subject_ids=[subject_id])
    with deps.write() as session:
        session.execute(delete(PendingKeyDestructionRow).where(PendingKeyDestructionRow.subject_id == subject_id))
    destroyed = (
        f"data_key:{destroyed_keys}",
        f"templates:{n_templates}",
        "consent_record:1",
        f"pairwise_refs:{n_refs}",
        f"attributes:{n_attributes}",
        "verification_state",
    )
    return deps.keyring.signer.sign_erasure(
        receipt_id=receipt_id,
        subject_ref=ref,
        tenant_id=tenant_id,
        erased_at=now,
        destroyed=destroyed,
        consent_record_sha256=consent_hash,
    )


def _count(
    session: Session,
    condition: ColumnElement[bool],
    table: type[TemplateRow] | type[SubjectRefRow] | type[SubjectAttributeRow],
) -> int:
    return int(session.scalar(select(func.count()).select_from(table).where(condition)) or 0)


def export(deps: SubjectDeps, *, subject_id: str, tenant_id: str, max_events: int) -> SubjectExport:
    """The person's data as seen through ``tenant_id`` (no template bytes, no other merchant named)."""
    ref = compute_ref(secret=deps.keyring.ref_secret, subject_id=subject_id, tenant_id=tenant_id)
    with deps.read() as session:
        subject = session.get(SubjectRow, subject_id)
        consent = session.get(ConsentRow, subject.consent_id) if subject is not None else None
        if subject is None or consent is None:
            raise NotFoundError("unknown subject")
        n_templates = _count(session, TemplateRow.subject_id == subject_id, TemplateRow)
        events = session.scalars(
            select(AuditEventRow)
            .where(AuditEventRow.subject_ref_hash == hash_ref(ref), AuditEventRow.tenant_id == tenant_id)
            .order_by(AuditEventRow.seq)
            .limit(max_events)
        ).all()
    return SubjectExport(
        subject_ref=ref,
        enrolled_at=subject.created_at,
        last_interaction_at=subject.last_interaction_at,
        delete_by=min(
            consent.recorded_at + timedelta(days=consent.retention_days),
            subject.last_interaction_at + timedelta(days=deps.max_idle_days),
        ),
        template_count=n_templates,
        consent=ConsentRecord(
            notice_version=consent.notice_version,
            notice_sha256=consent.notice_sha256,
            purposes=tuple(json.loads(consent.purposes)),
            retention_days=consent.retention_days,
            accepted_at=consent.accepted_at,
            recorded_at=consent.recorded_at,
            given_at_this_merchant=consent.tenant_id == tenant_id,
        ),
        events=tuple(SubjectEvent(at=row.created_at, event=row.event, detail=row.detail) for row in events),
    )


def due_for_erasure(deps: SubjectDeps, *, now: datetime, limit: int) -> list[tuple[str, str]]:
    """(subject_id, enrolling tenant_id) of people past their retention: consent term or idle limit (BIPA 15(a)).

    Every row a query returns is due (one query per distinct consent term, plus the idle query), so a sweep never
    stalls on not-yet-due people even when the retention setting changed between enrollments.
    """
    due: dict[str, str] = {}
    base = select(SubjectRow.id, SubjectRow.enrolled_tenant_id).join(ConsentRow, ConsentRow.id == SubjectRow.consent_id)
    with deps.read() as session:
        idle_cutoff = now - timedelta(days=deps.max_idle_days)
        queries = [base.where(SubjectRow.last_interaction_at <= idle_cutoff)]
        for term_days in session.scalars(select(ConsentRow.retention_days).distinct()):
            queries.append(
                base.where(
                    ConsentRow.retention_days == term_days,
                    ConsentRow.recorded_at <= now - timedelta(days=int(term_days)),
                )
            )
        for query in queries:
            if len(due) >= limit:
                break
            for subject_id, tenant_id in session.execute(query.order_by(SubjectRow.created_at).limit(limit)):
                due.setdefault(subject_id, tenant_id)
    return list(due.items())[:limit]
