"""The audit event hash: canonical, covers every field and the previous hash."""

from __future__ import annotations

from palmid.privacy.audit import GENESIS_HASH, event_hash

BASE = {
    "seq": 1,
    "created_at": "2026-11-25T12:00:00+00:00",
    "event": "enroll",
    "tenant_id": "t1",
    "subject_ref_hash": "a" * 64,
    "detail": "notice=2026-01",
    "prev_hash": GENESIS_HASH,
}


def test_hash_is_deterministic_and_covers_every_field() -> None:
    digest = event_hash(**BASE)  # type: ignore[arg-type]
    assert digest == event_hash(**BASE)  # type: ignore[arg-type]
    assert len(digest) == 64
    changes = {
        "seq": 2,
        "created_at": "2026-11-25T12:00:01+00:00",
        "event": "erase",
        "tenant_id": None,
        "subject_ref_hash": None,
        "detail": "notice=2026-02",
        "prev_hash": "f" * 64,
    }
    for field, value in changes.items():
        assert event_hash(**{**BASE, field: value}) != digest, field  # type: ignore[arg-type]
