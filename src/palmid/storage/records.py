"""Frozen records returned by the :class:`palmid.storage.repository.Store` facade (no ORM objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from palmid.privacy.receipts import ErasureReceipt

#: Scopes an API key can hold.
KNOWN_SCOPES: frozenset[str] = frozenset({"enroll", "identify", "verify", "erase", "admin"})


@dataclass(frozen=True, kw_only=True)
class IssuedKey:
    """A freshly issued API key. ``api_key`` is shown once; only its SHA-256 is stored."""

    tenant_id: str
    key_id: str
    api_key: str
    scopes: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class Tenant:
    """An authenticated merchant: who is calling, with which key and scopes."""

    tenant_id: str
    name: str
    scopes: frozenset[str]
    key_id: str


@dataclass(frozen=True, kw_only=True)
class ApiKeyInfo:
    """An API key as listed by operators (never the key itself)."""

    key_id: str
    tenant_id: str
    tenant_name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class EnrolledSubject:
    """Result of an enrollment. ``subject_id`` is internal and never leaves the service."""

    subject_id: str
    subject_ref: str


@dataclass(frozen=True, kw_only=True)
class ConsentRecord:
    """A stored consent as shown to the person (GDPR Art. 15). No other merchant is named."""

    notice_version: str
    notice_sha256: str
    purposes: tuple[str, ...]
    retention_days: int
    accepted_at: datetime
    recorded_at: datetime
    given_at_this_merchant: bool


@dataclass(frozen=True, kw_only=True)
class SubjectEvent:
    """One audit event about the person, as seen through the asking merchant's ref."""

    at: str
    event: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class SubjectExport:
    """Everything stored about a person, except template bytes (access and portability, GDPR Art. 15/20).

    Seen through one merchant: events are those recorded under that merchant's ref, and other merchants are
    never named (the export must not become a cross-merchant tracking channel).
    """

    subject_ref: str
    enrolled_at: datetime
    last_interaction_at: datetime
    delete_by: datetime
    """When the retention schedule erases the person at the latest: min(consent + term, last interaction + idle)."""
    template_count: int
    consent: ConsentRecord
    events: tuple[SubjectEvent, ...]


@dataclass(frozen=True, kw_only=True)
class RetentionErasure:
    """A person erased by the retention sweep (the service drops ``subject_id`` from its index)."""

    subject_id: str
    receipt: ErasureReceipt


@dataclass(frozen=True, kw_only=True)
class SubjectAttributes:
    """Decrypted attributes linked to a person, as visible to one merchant (its own membership id only)."""

    payment_token: str | None
    membership_id: str | None
    date_of_birth: date | None


@dataclass(frozen=True, kw_only=True)
class IdempotencyRecord:
    """The stored outcome of an idempotent request (``response_json`` never holds a subject id or ref)."""

    tenant_id: str
    key_sha256: str
    request_sha256: str
    response_json: str
    created_at: datetime
