"""The Store facade: everything the service and the CLI need from storage, as typed verbs.

Transactions: every write runs in one database transaction (SQLite ``BEGIN IMMEDIATE``); database errors surface
as :class:`palmid.errors.StorageError`. See :mod:`palmid.storage.keystore` for the backup model behind
crypto-shredding and :mod:`palmid.storage.keyring` for how keys are created and checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from types import TracebackType

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from palmid.config import Settings
from palmid.errors import ConflictError, NotFoundError, StorageError, ValidationFailed
from palmid.privacy.audit import AuditVerification, append_event, verify_chain
from palmid.privacy.consent import MAX_CONSENT_AGE, ConsentInput
from palmid.privacy.receipts import ErasureReceipt
from palmid.storage import key_sweep, lockout, pairwise, purposes, subjects, template_reads
from palmid.storage.apikeys import check_key, find_key, insert_key, key_id_of, list_key_infos, parse_scopes
from palmid.storage.crypto import KeyProvider
from palmid.storage.db import (
    READ_ONLY_OPTION,
    create_db_engine,
    ensure_private_dir,
    make_session_factory,
    upgrade_schema,
)
from palmid.storage.keyring import Keyring, open_keyring
from palmid.storage.keystore import KEYSTORE_FILENAME, Keystore
from palmid.storage.models import ApiKeyRow, TenantRow
from palmid.storage.records import (
    ApiKeyInfo,
    EnrolledSubject,
    IdempotencyRecord,
    IssuedKey,
    RetentionErasure,
    SubjectAttributes,
    SubjectExport,
    Tenant,
)
from palmid.storage.search_codes import SearchCodeStore

TEMPLATE_BATCH = 500


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Storage facade. Open with :meth:`open`; close with :meth:`close` (or use as a context manager)."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        sessions: sessionmaker[Session],
        keyring: Keyring,
        keystore: Keystore,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._sessions = sessions
        self._keyring = keyring
        self._keystore = keystore
        self._clock = clock

    @classmethod
    def open(
        cls,
        *,
        settings: Settings,
        clock: Callable[[], datetime] | None = None,
        key_provider: KeyProvider | None = None,
    ) -> Store:
        """Create the data dir (0700), run Alembic ``upgrade head``, load/create and check the keys.

        Raises CryptoError when a key is missing, insecure or not the one the database was created with, and
        StorageError when the database is unreachable.
        """
        ensure_private_dir(settings.data_dir)
        engine = create_db_engine(settings.effective_database_url)
        try:
            upgrade_schema(engine)
            sessions = make_session_factory(engine)
            with sessions() as session, session.begin():
                keyring = open_keyring(session, data_dir=settings.data_dir, key_provider=key_provider)
            keystore = Keystore(path=settings.data_dir / KEYSTORE_FILENAME)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StorageError(f"database unavailable: {type(exc).__name__}") from exc
        except BaseException:
            engine.dispose()
            raise
        store = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            keyring=keyring,
            keystore=keystore,
            clock=clock or _utc_now,
        )
        try:
            store.destroy_orphan_keys()
            store.delete_unused_consents()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._keystore.close()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # plumbing
    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        try:
            with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {type(exc).__name__}") from exc

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with self._sessions() as session:
                session.connection(execution_options={READ_ONLY_OPTION: True})
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {type(exc).__name__}") from exc

    @property
    def receipt_public_key_b64(self) -> str:
        """Base64url Ed25519 public key that signs erasure receipts."""
        return self._keyring.signer.public_key_b64

    # tenants and API keys
    def create_tenant(self, *, name: str, scopes: frozenset[str]) -> IssuedKey:
        """New merchant + its first API key. ConflictError if the name exists; ValidationFailed on bad input."""
        clean = name.strip()
        if not clean or len(clean) > 200 or not clean.isprintable():
            raise ValidationFailed("tenant name must be 1 to 200 printable characters")
        parse_scopes(scopes)
        tenant_id = uuid.uuid4().hex
        try:
            with self._write() as session:
                if session.scalar(select(TenantRow.id).where(TenantRow.name == clean)) is not None:
                    raise ConflictError(f"tenant {clean!r} already exists", code="tenant_exists")
                session.add(TenantRow(id=tenant_id, name=clean, created_at=self._now()))
                session.flush()
                return insert_key(session, tenant_id=tenant_id, scopes=scopes, now=self._now())
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise ConflictError(f"tenant {clean!r} already exists", code="tenant_exists") from exc
            raise

    def issue_key(self, *, tenant_id: str, scopes: frozenset[str]) -> IssuedKey:
        """Another API key for an existing tenant."""
        with self._write() as session:
            if session.get(TenantRow, tenant_id) is None:
                raise NotFoundError("unknown tenant")
            return insert_key(session, tenant_id=tenant_id, scopes=scopes, now=self._now())

    def authenticate(self, *, api_key: str) -> Tenant:
        """Bearer key -> Tenant. AuthError(unauthenticated) or AuthError(key_revoked). Constant-time compare."""
        key_id = key_id_of(api_key)
        found = None
        if key_id is not None:
            with self._read() as session:
                found = find_key(session, key_id=key_id)
        return check_key(found, api_key=api_key)

    def list_keys(self) -> list[ApiKeyInfo]:
        with self._read() as session:
            return list_key_infos(session)

    def revoke_key(self, *, key_id: str) -> None:
        """Revoke at once (the next authenticate fails). NotFoundError if unknown."""
        with self._write() as session:
            key = session.get(ApiKeyRow, key_id)
            if key is None:
                raise NotFoundError("unknown key id")
            if key.revoked_at is None:
                key.revoked_at = self._now()
                append_event(
                    session,
                    event="admin_key_revoked",
                    tenant_id=key.tenant_id,
                    subject_ref_hash=None,
                    detail=f"key_id={key_id}",
                    now=self._now(),
                )

    # subjects
    def _subject_deps(self) -> subjects.SubjectDeps:
        return subjects.SubjectDeps(
            write=self._write,
            read=self._read,
            keyring=self._keyring,
            keystore=self._keystore,
            retention_days=self._settings.retention.max_total_days,
            max_idle_days=self._settings.retention.max_idle_days,
        )

    def record_consent(self, *, tenant_id: str, consent: ConsentInput) -> str:
        """Store the immutable consent record (own transaction, audit event "consent"); returns its id.

        Call it before computing any template; then :meth:`enroll_subject` with ``consent_id``.
        """
        return subjects.record_consent(self._subject_deps(), tenant_id=tenant_id, consent=consent, now=self._now())

    def enroll_subject(
        self,
        *,
        tenant_id: str,
        template: bytes,
        consent_id: str | None = None,
        consent: ConsentInput | None = None,
        search_code: bytes | None = None,
        search_code_format: str | None = None,
    ) -> EnrolledSubject:
        """ONE transaction: subject + encrypted template (+ search code: opaque, sealed; with its format label) + ref
        + audit event ("enroll"), linked to a consent recorded by :meth:`record_consent` (``consent_id``: same tenant,
        unused, < 24 h old; else ConsentError consent_invalid) or recorded here (``consent``). Exactly one."""
        return subjects.enroll(
            self._subject_deps(),
            tenant_id=tenant_id,
            template=template,
            now=self._now(),
            consent=consent,
            consent_id=consent_id,
            search_code=search_code,
            search_code_format=search_code_format,
        )

    def delete_unused_consents(self) -> int:
        """Delete consent records older than 24 h that were never followed by an enrollment."""
        return subjects.delete_unused_consents(self._subject_deps(), older_than=self._now() - MAX_CONSENT_AGE)

    def iter_templates(self) -> Iterator[tuple[str, bytes]]:
        """(subject_id, decrypted template) for every enrolled subject (index rebuild). CryptoError fails closed."""
        return template_reads.iter_templates(self._subject_deps(), batch_size=TEMPLATE_BATCH)

    def load_templates(self, *, subject_ids: Sequence[str]) -> dict[str, bytes]:
        """Decrypted templates of those subjects still enrolled (batch; unknown or erased ids are absent)."""
        return template_reads.load_templates(self._subject_deps(), subject_ids=subject_ids)

    def load_template(self, *, subject_id: str) -> bytes:
        """The subject's decrypted template; NotFoundError if unknown, CryptoError if its key is gone."""
        return template_reads.load_template(self._subject_deps(), subject_id=subject_id)

    def count_subjects(self) -> int:
        return subjects.count(self._subject_deps())

    def ref_for(self, *, subject_id: str, tenant_id: str) -> str:
        """Pairwise ref of the subject for the tenant (stable; recorded so :meth:`resolve_ref` finds it)."""
        return pairwise.ref_for(self._subject_deps(), subject_id=subject_id, tenant_id=tenant_id)

    def resolve_ref(self, *, subject_ref: str, tenant_id: str) -> str:
        """subject_id for the tenant's ref; NotFoundError if unknown, erased or another tenant's ref."""
        return pairwise.resolve_ref(self._subject_deps(), subject_ref=subject_ref, tenant_id=tenant_id)

    def erase_subject(self, *, subject_id: str, tenant_id: str) -> ErasureReceipt:
        """Delete consent, subject, templates, refs and lockout state, append the audit event, destroy the
        subject's data key (crypto-shredding) and return a signed receipt. NotFoundError if unknown."""
        return subjects.erase(self._subject_deps(), subject_id=subject_id, tenant_id=tenant_id, now=self._now())

    def export_subject(self, *, subject_id: str, tenant_id: str) -> SubjectExport:
        """Everything stored about the person except template bytes, seen through the merchant's ref."""
        return subjects.export(self._subject_deps(), subject_id=subject_id, tenant_id=tenant_id, max_events=1000)

    def sweep_retention(self, *, limit: int = 500) -> list[RetentionErasure]:
        """Erase (with receipts and audit events) everyone past the retention schedule: the consent's term or
        ``retention.max_idle_days`` without interaction, whichever comes first (BIPA 15(a)). The service must
        drop the returned subject ids from its index. At most ``limit`` people per call."""
        return subjects.erase_due(self._subject_deps(), now=self._now(), limit=limit)

    def touch_subject(self, *, subject_id: str) -> None:
        """Record an interaction (``last_interaction_at``, for the retention schedule)."""
        subjects.touch(self._subject_deps(), subject_id=subject_id, now=self._now())

    def destroy_orphan_keys(self, *, full: bool = False) -> int:
        """Destroy keys of interrupted erasures and orphan keys created since the last sweep (see key_sweep)."""
        return key_sweep.destroy_orphan_keys(self._subject_deps(), now=self._now(), full=full)

    @property
    def search_codes(self) -> SearchCodeStore:
        """Each palm's sealed identification-index code (read at the rebuild, backfilled when missing or stale)."""
        return SearchCodeStore(deps=self._subject_deps(), now=self._now, batch_size=TEMPLATE_BATCH)

    # purposes (issue 8): encrypted attributes, idempotency, transparency counts
    def link_attributes(
        self,
        *,
        subject_id: str,
        tenant_id: str,
        payment_token: str | None = None,
        membership_id: str | None = None,
        date_of_birth: date | None = None,
    ) -> None:
        """Encrypt and store (replace) attributes under the person's data key; audit event "link"."""
        purposes.link_attributes(
            self._subject_deps(),
            subject_id=subject_id,
            tenant_id=tenant_id,
            payment_token=payment_token,
            membership_id=membership_id,
            date_of_birth=date_of_birth,
            now=self._now(),
        )

    def load_attributes(self, *, subject_id: str, tenant_id: str) -> SubjectAttributes:
        """Person-wide attributes + this merchant's membership id. CryptoError if shredded."""
        return purposes.load_attributes(self._subject_deps(), subject_id=subject_id, tenant_id=tenant_id)

    def consented_purposes(self, *, subject_id: str) -> tuple[str, ...]:
        return purposes.consented_purposes(self._subject_deps(), subject_id=subject_id)

    def find_idempotency(self, *, tenant_id: str, key_sha256: str) -> IdempotencyRecord | None:
        return purposes.find_idempotency(self._subject_deps(), tenant_id=tenant_id, key_sha256=key_sha256)

    def save_idempotency(
        self,
        *,
        tenant_id: str,
        key_sha256: str,
        request_sha256: str,
        response_json: str,
        subject_id: str | None,
        audit_detail: str,
    ) -> IdempotencyRecord:
        """ONE transaction: record + audit "payment" + touch subject; an existing key returns the stored record."""
        return purposes.save_idempotency(
            self._subject_deps(),
            tenant_id=tenant_id,
            key_sha256=key_sha256,
            request_sha256=request_sha256,
            response_json=response_json,
            subject_id=subject_id,
            audit_detail=audit_detail,
            now=self._now(),
        )

    def count_audit_events(
        self, *, event: str, since: datetime, until: datetime, detail_contains: str | None = None
    ) -> int:
        """Events ``event`` with since <= created_at < until (optionally whose detail contains a substring)."""
        return purposes.count_audit_events(
            self._subject_deps(), event=event, since=since, until=until, detail_contains=detail_contains
        )

    # verification lockout
    def check_not_locked(self, *, subject_id: str, tenant_id: str, key_id: str) -> None:
        """RateLimitedError(code='locked_out', retry_after_s) while the subject or the key is in back-off."""
        with self._read() as session:
            lockout.check_subject_and_key(
                session, subject_id=subject_id, tenant_id=tenant_id, key_id=key_id, now=self._now()
            )

    def register_verification_result(self, *, subject_id: str, tenant_id: str, key_id: str, matched: bool) -> None:
        """A success resets both counters; a failure counts for the (tenant, subject) and for the key."""
        with self._write() as session:
            lockout.record_result(
                session,
                subject_id=subject_id,
                tenant_id=tenant_id,
                key_id=key_id,
                matched=matched,
                max_failures=self._settings.max_failed_verifications,
                now=self._now(),
            )

    # audit
    def append_audit(self, *, event: str, tenant_id: str | None, subject_ref_hash: str | None, detail: str) -> None:
        """Append one event (short slug; detail <= 500 chars, never biometric data or scores)."""
        with self._write() as session:
            now = self._now()
            append_event(
                session, event=event, tenant_id=tenant_id, subject_ref_hash=subject_ref_hash, detail=detail, now=now
            )

    def verify_audit(self) -> AuditVerification:
        """Check the whole chain; reports the first broken event."""
        with self._read() as session:
            return verify_chain(session)
