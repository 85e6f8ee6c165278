"""Append-only, hash-chained audit log (no biometric payload).

Each event stores ``prev_hash`` and ``hash = SHA-256(canonical JSON of the event fields + prev_hash)``. Events are
numbered ``seq`` = 1, 2, 3, ... without gaps; a head row holds the last ``seq`` and hash, so deleting the newest
events is detected too. Appends are serialized: on PostgreSQL with ``SELECT ... FOR UPDATE`` on the head row, on
SQLite by ``BEGIN IMMEDIATE`` (every write transaction of the store takes the database write lock first).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from palmid.errors import ValidationFailed
from palmid.storage.models import AuditEventRow, AuditHeadRow


@dataclass(frozen=True, kw_only=True)
class AuditVerification:
    """Result of checking the chain: ``first_broken_id`` is the ``seq`` of the first bad event, if any."""

    ok: bool
    checked: int
    first_broken_id: int | None
    reason: str | None


GENESIS_HASH = "0" * 64
MAX_DETAIL_CHARS = 500
_EVENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def audit_timestamp(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 (microseconds always present), so string order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *,
    seq: int,
    created_at: str,
    event: str,
    tenant_id: str | None,
    subject_ref_hash: str | None,
    detail: str,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of the event fields and the previous hash."""
    payload = {
        "seq": seq,
        "created_at": created_at,
        "event": event,
        "tenant_id": tenant_id,
        "subject_ref_hash": subject_ref_hash,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def append_event(
    session: Session,
    *,
    event: str,
    tenant_id: str | None,
    subject_ref_hash: str | None,
    detail: str,
    now: datetime,
) -> int:
    """Append one event inside the caller's transaction (the head row is locked until it commits)."""
    if not _EVENT_RE.match(event):
        raise ValidationFailed("audit event must be a short lowercase slug")
    if len(detail) > MAX_DETAIL_CHARS:
        raise ValidationFailed(f"audit detail is limited to {MAX_DETAIL_CHARS} characters")
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one()
    seq = head.last_seq + 1
    created_at = audit_timestamp(now)
    digest = event_hash(
        seq=seq,
        created_at=created_at,
        event=event,
        tenant_id=tenant_id,
        subject_ref_hash=subject_ref_hash,
        detail=detail,
        prev_hash=head.last_hash,
    )
    session.add(
        AuditEventRow(
            seq=seq,
            created_at=created_at,
            event=event,
            tenant_id=tenant_id,
            subject_ref_hash=subject_ref_hash,
            detail=detail,
            prev_hash=head.last_hash,
            hash=digest,
        )
    )
    head.last_seq = seq
    head.last_hash = digest
    session.flush()
    return seq


def verify_chain(session: Session, *, batch_size: int = 1000) -> AuditVerification:
    """Walk the chain from the start; report the first event whose seq, link or hash is wrong.

    The head is read first and only events up to its ``last_seq`` are checked, so appends that commit during
    the walk are not mistaken for tampering.
    """
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1)).scalar_one_or_none()
    if head is None:
        return _broken(0, 1, "the audit head row is missing")
    expected_prev = GENESIS_HASH
    checked = 0
    last_seq = 0
    while True:
        batch = session.scalars(
            select(AuditEventRow)
            .where(AuditEventRow.seq > last_seq, AuditEventRow.seq <= head.last_seq)
            .order_by(AuditEventRow.seq)
            .limit(batch_size)
        ).all()
        if not batch:
            break
        for row in batch:
            checked += 1
            if row.seq != last_seq + 1:
                return _broken(checked, last_seq + 1, "missing event (gap in sequence numbers)")
            if row.prev_hash != expected_prev:
                return _broken(checked, row.seq, "prev_hash does not match the previous event")
            digest = event_hash(
                seq=row.seq,
                created_at=row.created_at,
                event=row.event,
                tenant_id=row.tenant_id,
                subject_ref_hash=row.subject_ref_hash,
                detail=row.detail,
                prev_hash=row.prev_hash,
            )
            if not hmac.compare_digest(digest, row.hash):
                return _broken(checked, row.seq, "event content does not match its hash")
            expected_prev = row.hash
            last_seq = row.seq
    if head.last_seq != last_seq or head.last_hash != expected_prev:
        return _broken(checked, last_seq + 1, "newest events are missing (head does not match the last event)")
    return AuditVerification(ok=True, checked=checked, first_broken_id=None, reason=None)


def _broken(checked: int, seq: int, reason: str) -> AuditVerification:
    return AuditVerification(ok=False, checked=checked, first_broken_id=seq, reason=reason)
