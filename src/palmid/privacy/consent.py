"""Consent before capture: the notice a person accepts and the immutable record stored for it.

A consent record holds the notice version, the SHA-256 of the exact notice text shown, the purposes, the retention
term, when the person accepted and when the service recorded it, and the merchant. It is never updated (the store
has no update path and the database refuses UPDATE with a trigger).

Erasure versus proof of consent (GDPR Art. 17 vs BIPA 15(b)): when a person is erased, their consent record is
deleted with everything else; the service keeps only the SHA-256 of the canonical consent record inside the signed
erasure receipt and the audit event. That hash proves that a specific consent existed (whoever holds the receipt can
show the matching record) but cannot be linked back to the person by the service, because nothing that identifies
them remains.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from palmid.errors import ConsentError

#: The notice shown at the kiosk, by version. A new wording is a new version; texts are never edited in place.
NOTICE_TEXTS: dict[str, str] = {
    "2026-01": (
        "palmid palm enrollment notice (version 2026-01). With your explicit consent, palmid computes a numeric "
        "template from photos of your palm so that participating merchants can recognise you for the purposes you "
        "choose. Photos are processed in memory only and never stored. The template is encrypted, is never sold or "
        "shared, and each merchant only sees its own pseudonymous reference for you. You can erase your enrollment "
        "at any time in one step; the template is destroyed at the latest when the retention term ends. Consent is "
        "not a condition of service: you can always use the ordinary way to pay or enter."
    ),
}
CURRENT_NOTICE_VERSION = "2026-01"

_PURPOSE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_PURPOSES = 10
#: How far in the future an ``accepted_at`` may lie (clock skew of the kiosk).
MAX_CLOCK_SKEW = timedelta(minutes=5)
#: How old an ``accepted_at`` may be when recorded (a consent is given at the kiosk, just before capture).
MAX_CONSENT_AGE = timedelta(hours=24)


@dataclass(frozen=True, kw_only=True)
class ConsentInput:
    """What the person accepted, as received from the kiosk (validated by :func:`build_consent`)."""

    notice_version: str
    notice_sha256: str
    purposes: tuple[str, ...]
    accepted_at: datetime


def notice_sha256(*, notice_version: str) -> str:
    """SHA-256 (hex) of the notice text for ``notice_version``; unknown versions are refused."""
    text = NOTICE_TEXTS.get(notice_version)
    if text is None:
        raise ConsentError(f"unknown notice version {notice_version!r}", code="consent_invalid")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_consent(
    *,
    notice_version: str,
    purposes: list[str] | tuple[str, ...],
    accepted_at: datetime,
    now: datetime,
    notice_text: str | None = None,
) -> ConsentInput:
    """Validate a consent from the kiosk and bind it to the SHA-256 of the notice text. Raises ConsentError.

    ``notice_text`` is the exact text shown for ``notice_version`` (e.g. the kiosk's rendered notice); when it is
    omitted the version must be one of :data:`NOTICE_TEXTS`.
    """
    if notice_text is not None:
        if not notice_version or len(notice_version) > 64 or not notice_text.strip():
            raise ConsentError("notice version and text are required", code="consent_invalid")
        digest = hashlib.sha256(notice_text.encode("utf-8")).hexdigest()
    else:
        digest = notice_sha256(notice_version=notice_version)
    if not purposes:
        raise ConsentError("consent must name at least one purpose", code="consent_invalid")
    if len(purposes) > MAX_PURPOSES:
        raise ConsentError(f"at most {MAX_PURPOSES} purposes", code="consent_invalid")
    if len(set(purposes)) != len(purposes):
        raise ConsentError("purposes must not repeat", code="consent_invalid")
    for purpose in purposes:
        if not _PURPOSE_RE.match(purpose):
            raise ConsentError("purpose must be a short lowercase slug", code="consent_invalid")
    if accepted_at.tzinfo is None:
        raise ConsentError("accepted_at must carry a time zone", code="consent_invalid")
    if accepted_at > now + MAX_CLOCK_SKEW:
        raise ConsentError("accepted_at lies in the future", code="consent_invalid")
    if accepted_at < now - MAX_CONSENT_AGE:
        raise ConsentError("consent is too old: accept the notice again", code="consent_invalid")
    return ConsentInput(
        notice_version=notice_version, notice_sha256=digest, purposes=tuple(purposes), accepted_at=accepted_at
    )


def consent_record_sha256(
    *,
    consent_id: str,
    tenant_id: str,
    consent: ConsentInput,
    retention_days: int,
    recorded_at: datetime,
) -> str:
    """SHA-256 (hex) of the canonical JSON of a stored consent record (kept in erasure receipts as proof)."""
    payload = {
        "consent_id": consent_id,
        "tenant_id": tenant_id,
        "notice_version": consent.notice_version,
        "notice_sha256": consent.notice_sha256,
        "purposes": list(consent.purposes),
        "accepted_at": consent.accepted_at.isoformat(),
        "recorded_at": recorded_at.isoformat(),
        "retention_days": retention_days,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
