"""ORM models (SQLAlchemy 2 typed mapping). The schema itself is created by the Alembic migrations.

Main database: tenants, api_keys, consents, subjects, templates (ciphertext only), subject_refs (hashes of pairwise
refs), lockouts, audit_events + audit_head, store_meta, subject_attributes (ciphertext only), idempotency_records,
search_codes (ciphertext only), pending_key_destructions.
The per-subject wrapped data keys are NOT here: they live in the separate keystore (see
:mod:`palmid.storage.keystore`), so a backup of this database cannot be decrypted for a person once their data key
is destroyed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, MetaData, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StoreMeta(Base):
    """Key/value facts about the store (e.g. fingerprints of the keys it was created with)."""

    __tablename__ = "store_meta"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class TenantRow(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ConsentRow(Base):
    """Immutable (UPDATE refused by a trigger); deleted only when the person is erased."""

    __tablename__ = "consents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    notice_version: Mapped[str] = mapped_column(String(64))
    notice_sha256: Mapped[str] = mapped_column(String(64))
    purposes: Mapped[str] = mapped_column(Text)
    retention_days: Mapped[int] = mapped_column(Integer)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubjectRow(Base):
    __tablename__ = "subjects"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), unique=True)
    enrolled_tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_interaction_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TemplateRow(Base):
    """Ciphertext only: AES-256-GCM under the subject's data key, bound to subject id and purpose."""

    __tablename__ = "templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubjectRefRow(Base):
    """Lookup (tenant, SHA-256 of pairwise ref) -> subject. The refs themselves are not stored."""

    __tablename__ = "subject_refs"
    __table_args__ = (UniqueConstraint("tenant_id", "ref_sha256", name="uq_subject_refs_tenant_ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    ref_sha256: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)


class LockoutRow(Base):
    """Consecutive failed verifications per (tenant, subject) or per API key, and the back-off deadline."""

    __tablename__ = "lockouts"
    lock_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    subject_id: Mapped[str | None] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEventRow(Base):
    """Append-only (UPDATE and DELETE refused by triggers); no biometric payload."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    tenant_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subject_ref_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(String(500))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """Single row (id=1): last seq and hash; locked FOR UPDATE while appending."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class SubjectAttributeRow(Base):
    """An encrypted attribute linked to a person (payment token, membership id, date of birth).

    ``scope`` is ``"*"`` for person-wide attributes or a tenant id for per-merchant ones. The ciphertext is sealed
    with the subject's data key, so erasure shreds it together with the template.
    """

    __tablename__ = "subject_attributes"
    __table_args__ = (UniqueConstraint("subject_id", "kind", "scope", name="uq_subject_attributes_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyRecordRow(Base):
    """The stored outcome of an idempotent merchant request (no subject id or ref in ``response``)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("tenant_id", "key_sha256", name="uq_idempotency_records_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    key_sha256: Mapped[str] = mapped_column(String(64))
    request_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SearchCodeRow(Base):
    """A template's identification-index code, opaque to storage: AES-256-GCM under the subject's data key, bound to
    subject id, purpose and ``code_format`` (the caller's label of the code's format). Erased with the template."""

    __tablename__ = "search_codes"
    template_id: Mapped[int] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    code_format: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PendingKeyDestructionRow(Base):
    """A data key the erasure transaction decided to destroy; the row goes once the keystore deleted the key."""

    __tablename__ = "pending_key_destructions"
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
