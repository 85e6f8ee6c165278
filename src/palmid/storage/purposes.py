"""Purpose data: encrypted attributes linked to a person, idempotency records, transparency counts.

Attributes are sealed with the person's own data key (AES-256-GCM, associated data = subject id + ``attr:<kind>:
<scope>``), so erasing the person shreds them with the template and a row cannot be moved to another person,
kind or merchant.
"""

from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from palmid.errors import NotFoundError, StorageError, ValidationFailed
from palmid.privacy.audit import append_event, audit_timestamp
from palmid.privacy.refs import compute_ref, hash_ref
from palmid.storage.crypto import seal, unseal
from palmid.storage.models import AuditEventRow, ConsentRow, IdempotencyRecordRow, SubjectAttributeRow, SubjectRow
from palmid.storage.records import IdempotencyRecord, SubjectAttributes
from palmid.storage.subjects import SubjectDeps, data_key_for

PERSON_WIDE = "*"
MAX_ATTRIBUTE_CHARS = 200


def _purpose(kind: str, scope: str) -> str:
    return f"attr:{kind}:{scope}"


def _subject_key(deps: SubjectDeps, subject_id: str) -> bytes:
    wrapped = deps.keystore.get_many(subject_ids=[subject_id]).get(subject_id)
    return data_key_for(deps, subject_id=subject_id, wrapped=wrapped)


def link_attributes(
    deps: SubjectDeps,
    *,
    subject_id: str,
    tenant_id: str,
    payment_token: str | None,
    membership_id: str | None,
    date_of_birth: date | None,
    now: datetime,
) -> None:
    """Encrypt and store (replace) the given attributes in one transaction, with an audit event "link"."""
    values = [
        (kind, scope, value)
        for kind, scope, value in (
            ("payment_token", PERSON_WIDE, payment_token),
            ("membership_id", tenant_id, membership_id),
            ("date_of_birth", PERSON_WIDE, date_of_birth.isoformat() if date_of_birth else None),
        )
        if value is not None
    ]
    if not values:
        raise ValidationFailed("nothing to link")
    if any(not value or len(value) > MAX_ATTRIBUTE_CHARS for _, _, value in values):
        raise ValidationFailed(f"attributes must be 1 to {MAX_ATTRIBUTE_CHARS} characters")
    ref = compute_ref(secret=deps.keyring.ref_secret, subject_id=subject_id, tenant_id=tenant_id)
    with deps.write() as session:
        if session.get(SubjectRow, subject_id) is None:
            raise NotFoundError("unknown subject")
        data_key = _subject_key(deps, subject_id)
        for kind, scope, value in values:
            session.execute(
                delete(SubjectAttributeRow).where(
                    SubjectAttributeRow.subject_id == subject_id,
                    SubjectAttributeRow.kind == kind,
                    SubjectAttributeRow.scope == scope,
                )
            )
            sealed = seal(
                data_key=data_key, plaintext=value.encode(), subject_id=subject_id, purpose=_purpose(kind, scope)
            )
            session.add(
                SubjectAttributeRow(subject_id=subject_id, scope=scope, kind=kind, ciphertext=sealed, created_at=now)
            )
        append_event(
            session,
            event="link",
            tenant_id=tenant_id,
            subject_ref_hash=hash_ref(ref),
            detail="kinds=" + ",".join(kind for kind, _, _ in values),
            now=now,
        )


def load_attributes(deps: SubjectDeps, *, subject_id: str, tenant_id: str) -> SubjectAttributes:
    """Decrypt the person-wide attributes and this merchant's membership id. CryptoError if shredded."""
    with deps.read() as session:
        if session.get(SubjectRow, subject_id) is None:
            raise NotFoundError("unknown subject")
        rows = session.execute(
            select(SubjectAttributeRow.kind, SubjectAttributeRow.scope, SubjectAttributeRow.ciphertext).where(
                SubjectAttributeRow.subject_id == subject_id,
                or_(SubjectAttributeRow.scope == PERSON_WIDE, SubjectAttributeRow.scope == tenant_id),
            )
        ).all()
    found: dict[str, str] = {}
    if rows:
        data_key = _subject_key(deps, subject_id)
        for kind, scope, sealed in rows:
            plain = unseal(data_key=data_key, sealed=sealed, subject_id=subject_id, purpose=_purpose(kind, scope))
            found[kind] = plain.decode()
    birth = found.get("date_of_birth")
    return SubjectAttributes(
        payment_token=found.get("payment_token"),
        membership_id=found.get("membership_id"),
        date_of_birth=date.fromisoformat(birth) if birth else None,
    )


def consented_purposes(deps: SubjectDeps, *, subject_id: str) -> tuple[str, ...]:
    with deps.read() as session:
        raw = session.scalar(
            select(ConsentRow.purposes)
            .join(SubjectRow, SubjectRow.consent_id == ConsentRow.id)
            .where(SubjectRow.id == subject_id)
        )
    if raw is None:
        raise NotFoundError("unknown subject")
    return tuple(json.loads(raw))


def _record(row: IdempotencyRecordRow) -> IdempotencyRecord:
    return IdempotencyRecord(
        tenant_id=row.tenant_id,
        key_sha256=row.key_sha256,
        request_sha256=row.request_sha256,
        response_json=row.response,
        created_at=row.created_at,
    )


def find_idempotency(deps: SubjectDeps, *, tenant_id: str, key_sha256: str) -> IdempotencyRecord | None:
    with deps.read() as session:
        row = session.scalar(
            select(IdempotencyRecordRow).where(
                IdempotencyRecordRow.tenant_id == tenant_id, IdempotencyRecordRow.key_sha256 == key_sha256
            )
        )
        return _record(row) if row is not None else None


def save_idempotency(
    deps: SubjectDeps,
    *,
    tenant_id: str,
    key_sha256: str,
    request_sha256: str,
    response_json: str,
    subject_id: str | None,
    audit_detail: str,
    now: datetime,
) -> IdempotencyRecord:
    """ONE transaction: the record + audit event "payment" + the subject's last interaction. When the key was
    already used, the existing record is returned and nothing is written."""
    try:
        with deps.write() as session:
            existing = session.scalar(
                select(IdempotencyRecordRow).where(
                    IdempotencyRecordRow.tenant_id == tenant_id, IdempotencyRecordRow.key_sha256 == key_sha256
                )
            )
            if existing is not None:
                return _record(existing)
            row = IdempotencyRecordRow(
                tenant_id=tenant_id,
                key_sha256=key_sha256,
                request_sha256=request_sha256,
                response=response_json,
                created_at=now,
            )
            session.add(row)
            ref_hash = None
            if subject_id is not None:
                subject = session.get(SubjectRow, subject_id)
                if subject is None:
                    raise NotFoundError("unknown subject")
                subject.last_interaction_at = now
                ref = compute_ref(secret=deps.keyring.ref_secret, subject_id=subject_id, tenant_id=tenant_id)
                ref_hash = hash_ref(ref)
            append_event(
                session, event="payment", tenant_id=tenant_id, subject_ref_hash=ref_hash, detail=audit_detail, now=now
            )
            session.flush()
            return _record(row)
    except StorageError as exc:
        if not isinstance(exc.__cause__, IntegrityError):
            raise
    found = find_idempotency(deps, tenant_id=tenant_id, key_sha256=key_sha256)
    if found is None:
        raise StorageError("idempotency record could not be stored")
    return found


def count_audit_events(
    deps: SubjectDeps, *, event: str, since: datetime, until: datetime, detail_contains: str | None
) -> int:
    """Events named ``event`` with ``since <= created_at < until`` (and a plain substring of ``detail``)."""
    query = (
        select(func.count())
        .select_from(AuditEventRow)
        .where(
            AuditEventRow.event == event,
            AuditEventRow.created_at >= audit_timestamp(since),
            AuditEventRow.created_at < audit_timestamp(until),
        )
    )
    if detail_contains:
        query = query.where(AuditEventRow.detail.contains(detail_contains, autoescape=True))
    with deps.read() as session:
        return int(session.scalar(query) or 0)
