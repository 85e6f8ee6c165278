"""Request and response models of the HTTP API (pydantic v2).

Responses carry decisions only: there is deliberately no field for a score, distance, rank or candidate list,
and ``extra="forbid"`` keeps anyone from smuggling one in through a dict.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConsentRequest(_Frozen):
    """The person's explicit consent (the ``consent`` form field, JSON), accepted at the kiosk before capture.

    Checked in full by :func:`palmid.privacy.consent.build_consent` (known notice version, purpose slugs,
    time zone, not in the future, not older than a day) before any photo is decoded.
    """

    notice_version: str = Field(min_length=1, max_length=64, examples=["2026-01"])
    purposes: list[str] = Field(min_length=1, max_length=16, examples=[["payment"]])
    accepted_at: datetime = Field(examples=["2026-01-01T12:00:00Z"])


class EnrollmentResponse(_Frozen):
    subject_ref: str = Field(description="Opaque reference of the person, valid for the calling merchant only.")


class IdentificationResponse(_Frozen):
    matched: bool
    subject_ref: str | None = Field(description="The calling merchant's own ref for the person, or null.")


class VerificationResponse(_Frozen):
    matched: bool


class ErasureReceiptResponse(_Frozen):
    """Proof of erasure signed by the service: Ed25519 over the canonical JSON of every other field.

    Check it with :func:`palmid.privacy.receipts.verify_receipt` and the service's public key.
    """

    version: str
    receipt_id: str
    subject_ref: str
    tenant_id: str
    erased_at: datetime
    destroyed: list[str] = Field(description="What was destroyed (data key, template, index entry, ...).")
    consent_record_sha256: str = Field(description="SHA-256 of the deleted consent record (proof it existed).")
    public_key: str = Field(description="The service's Ed25519 public key (base64url, raw 32 bytes).")
    signature: str = Field(description="Ed25519 signature (base64url) of the canonical payload.")
    algorithm: str = "Ed25519"


class ConsentRecordResponse(_Frozen):
    notice_version: str
    notice_sha256: str
    purposes: list[str]
    retention_days: int
    accepted_at: datetime
    recorded_at: datetime
    given_at_this_merchant: bool


class SubjectEventResponse(_Frozen):
    at: str
    event: str
    detail: str


class SubjectExportResponse(_Frozen):
    """Everything stored about the person, except template bytes, seen through the calling merchant's ref."""

    subject_ref: str
    enrolled_at: datetime
    last_interaction_at: datetime
    delete_by: datetime = Field(description="When the retention schedule erases the person at the latest.")
    template_count: int
    consent: ConsentRecordResponse
    linked: list[str] = Field(
        description="What the person linked (kinds only: payment_token, membership_id, "
        "date_of_birth); the values never leave through a merchant."
    )
    membership_id: str | None = Field(description="The calling merchant's own membership id, if linked.")
    events: list[SubjectEventResponse]


class HealthResponse(_Frozen):
    status: str


class ImageIssue(_Frozen):
    """Why one enrollment photo was refused: a reason code the kiosk can turn into guidance."""

    index: int = Field(ge=0)
    code: str


class ErrorBody(_Frozen):
    code: str
    message: str
    images: list[ImageIssue] | None = None


class ErrorResponse(_Frozen):
    error: ErrorBody
