"""Verification lockout (NIST SP 800-63B): at most N consecutive failures, then exponential back-off.

State is kept per (tenant, subject) and per API key. After ``max_failures`` consecutive failures the lock lasts
``BASE_BACKOFF_S * 2 ** (failures - max_failures)`` seconds (capped at ``MAX_BACKOFF_S``); a success resets it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from palmid.errors import RateLimitedError
from palmid.storage.models import LockoutRow, SubjectRow

BASE_BACKOFF_S = 30.0
MAX_BACKOFF_S = 24 * 3600.0


def subject_lock_key(*, tenant_id: str, subject_id: str) -> str:
    return f"s:{tenant_id}:{subject_id}"


def api_key_lock_key(*, key_id: str) -> str:
    return f"k:{key_id}"


def backoff_s(*, failures: int, max_failures: int) -> float:
    """Lock duration after ``failures`` consecutive failures (0 below the limit)."""
    if failures < max_failures:
        return 0.0
    return min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2.0 ** min(failures - max_failures, 32))


def check_not_locked(session: Session, *, lock_keys: list[str], now: datetime) -> None:
    rows = session.scalars(select(LockoutRow).where(LockoutRow.lock_key.in_(lock_keys))).all()
    waits = [(row.locked_until - now).total_seconds() for row in rows if row.locked_until and row.locked_until > now]
    if waits:
        raise RateLimitedError(
            "too many failed verifications: try again later", code="locked_out", retry_after_s=max(waits)
        )


def register_failure(
    session: Session, *, lock_key: str, subject_id: str | None, max_failures: int, now: datetime
) -> None:
    """Count one failure (the row is created race-free with INSERT ... ON CONFLICT DO NOTHING, then locked)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(LockoutRow)
        .values(lock_key=lock_key, subject_id=subject_id, failures=0, locked_until=None)
        .on_conflict_do_nothing(index_elements=["lock_key"])
    )
    row = session.execute(select(LockoutRow).where(LockoutRow.lock_key == lock_key).with_for_update()).scalar_one()
    row.failures += 1
    wait_s = backoff_s(failures=row.failures, max_failures=max_failures)
    row.locked_until = now + timedelta(seconds=wait_s) if wait_s > 0 else None


def reset(session: Session, *, lock_keys: list[str]) -> None:
    session.execute(delete(LockoutRow).where(LockoutRow.lock_key.in_(lock_keys)))


def check_subject_and_key(session: Session, *, subject_id: str, tenant_id: str, key_id: str, now: datetime) -> None:
    """Raise RateLimitedError(locked_out) while the (tenant, subject) or the API key is in back-off."""
    keys = [subject_lock_key(tenant_id=tenant_id, subject_id=subject_id), api_key_lock_key(key_id=key_id)]
    check_not_locked(session, lock_keys=keys, now=now)


def record_result(
    session: Session,
    *,
    subject_id: str,
    tenant_id: str,
    key_id: str,
    matched: bool,
    max_failures: int,
    now: datetime,
) -> None:
    """A success resets both counters; a failure counts for the (tenant, subject) and for the key."""
    subject_key = subject_lock_key(tenant_id=tenant_id, subject_id=subject_id)
    key_key = api_key_lock_key(key_id=key_id)
    if matched:
        reset(session, lock_keys=[subject_key, key_key])
        return
    exists = session.get(SubjectRow, subject_id) is not None
    register_failure(
        session, lock_key=subject_key, subject_id=subject_id if exists else None, max_failures=max_failures, now=now
    )
    register_failure(session, lock_key=key_key, subject_id=None, max_failures=max_failures, now=now)
