"""Consent validation and the canonical consent-record hash kept as proof after erasure."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from palmid.errors import ConsentError
from palmid.privacy.consent import (
    CURRENT_NOTICE_VERSION,
    NOTICE_TEXTS,
    build_consent,
    consent_record_sha256,
    notice_sha256,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_valid_consent_is_bound_to_the_notice_text() -> None:
    consent = build_consent(
        notice_version=CURRENT_NOTICE_VERSION, purposes=["payment", "age_check"], accepted_at=NOW, now=NOW
    )
    expected = hashlib.sha256(NOTICE_TEXTS[CURRENT_NOTICE_VERSION].encode()).hexdigest()
    assert consent.notice_sha256 == expected == notice_sha256(notice_version=CURRENT_NOTICE_VERSION)
    assert consent.purposes == ("payment", "age_check")


def test_explicit_notice_text_is_hashed() -> None:
    consent = build_consent(
        notice_version="kiosk-1", notice_text="Kiosk notice", purposes=["payment"], accepted_at=NOW, now=NOW
    )
    assert consent.notice_sha256 == hashlib.sha256(b"Kiosk notice").hexdigest()


@pytest.mark.parametrize(
    ("version", "purposes", "accepted_at"),
    [
        ("1999-01", ["payment"], NOW),
        (CURRENT_NOTICE_VERSION, [], NOW),
        (CURRENT_NOTICE_VERSION, ["payment", "payment"], NOW),
        (CURRENT_NOTICE_VERSION, ["Payment!"], NOW),
        (CURRENT_NOTICE_VERSION, [f"p{i}" for i in range(11)], NOW),
        (CURRENT_NOTICE_VERSION, ["payment"], NOW.replace(tzinfo=None)),
        (CURRENT_NOTICE_VERSION, ["payment"], NOW + timedelta(hours=1)),
        (CURRENT_NOTICE_VERSION, ["payment"], NOW - timedelta(days=2)),
    ],
)
def test_invalid_consents_are_refused(version: str, purposes: list[str], accepted_at: datetime) -> None:
    with pytest.raises(ConsentError) as info:
        build_consent(notice_version=version, purposes=purposes, accepted_at=accepted_at, now=NOW)
    assert info.value.code == "consent_invalid"


def test_consent_record_hash_covers_every_field() -> None:
    consent = build_consent(notice_version=CURRENT_NOTICE_VERSION, purposes=["payment"], accepted_at=NOW, now=NOW)
    base = {"consent_id": "c1", "tenant_id": "t1", "consent": consent, "retention_days": 365, "recorded_at": NOW}
    digest = consent_record_sha256(**base)  # type: ignore[arg-type]
    assert len(digest) == 64
    assert consent_record_sha256(**{**base, "tenant_id": "t2"}) != digest  # type: ignore[arg-type]
    assert consent_record_sha256(**{**base, "retention_days": 366}) != digest  # type: ignore[arg-type]
