"""Purpose data (issue 8): encrypted attributes shredded with the person, idempotency records, audit counts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from storage_helpers import FakeClock, enroll_one, new_tenant, raw_engine

from palmid.config import Settings
from palmid.errors import CryptoError, NotFoundError, ValidationFailed
from palmid.storage.repository import Store

TOKEN = "tok_visa_4242_secret_token"


def test_attributes_round_trip_per_merchant(store: Store, settings: Settings, clock: FakeClock) -> None:
    shop, stadium = new_tenant(store, "shop"), new_tenant(store, "stadium")
    subject = enroll_one(store, clock, tenant_id=shop.tenant_id).subject_id
    store.link_attributes(
        subject_id=subject, tenant_id=shop.tenant_id, payment_token=TOKEN, date_of_birth=date(1990, 5, 17)
    )
    store.link_attributes(subject_id=subject, tenant_id=stadium.tenant_id, membership_id="SEASON-77")
    at_shop = store.load_attributes(subject_id=subject, tenant_id=shop.tenant_id)
    at_stadium = store.load_attributes(subject_id=subject, tenant_id=stadium.tenant_id)
    assert (at_shop.payment_token, at_shop.membership_id, at_shop.date_of_birth) == (TOKEN, None, date(1990, 5, 17))
    assert at_stadium.membership_id == "SEASON-77"  # only the stadium sees its membership id
    store.link_attributes(subject_id=subject, tenant_id=shop.tenant_id, payment_token="tok_new")
    assert store.load_attributes(subject_id=subject, tenant_id=shop.tenant_id).payment_token == "tok_new"
    assert store.consented_purposes(subject_id=subject) == ("payment",)
    engine = raw_engine(settings.effective_database_url)
    with engine.connect() as connection:
        blobs = [bytes(row[0]) for row in connection.execute(text("SELECT ciphertext FROM subject_attributes"))]
    engine.dispose()
    assert len(blobs) == 3
    assert not any(b"tok_new" in blob or b"SEASON-77" in blob or b"1990-05-17" in blob for blob in blobs)
    with pytest.raises(ValidationFailed):
        store.link_attributes(subject_id=subject, tenant_id=shop.tenant_id)
    with pytest.raises(NotFoundError):
        store.link_attributes(subject_id="0" * 32, tenant_id=shop.tenant_id, payment_token=TOKEN)


def test_attribute_rows_cannot_be_moved_between_merchants(store: Store, settings: Settings, clock: FakeClock) -> None:
    shop, stadium = new_tenant(store, "shop"), new_tenant(store, "stadium")
    subject = enroll_one(store, clock, tenant_id=shop.tenant_id).subject_id
    store.link_attributes(subject_id=subject, tenant_id=shop.tenant_id, membership_id="GOLD-1")
    engine = raw_engine(settings.effective_database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE subject_attributes SET scope = :s"), {"s": stadium.tenant_id})
    engine.dispose()
    with pytest.raises(CryptoError):
        store.load_attributes(subject_id=subject, tenant_id=stadium.tenant_id)


def test_erasure_shreds_attributes(store: Store, clock: FakeClock) -> None:
    shop = new_tenant(store)
    subject = enroll_one(store, clock, tenant_id=shop.tenant_id).subject_id
    store.link_attributes(subject_id=subject, tenant_id=shop.tenant_id, payment_token=TOKEN, membership_id="M1")
    receipt = store.erase_subject(subject_id=subject, tenant_id=shop.tenant_id)
    assert "attributes:2" in receipt.destroyed
    with pytest.raises(NotFoundError):
        store.load_attributes(subject_id=subject, tenant_id=shop.tenant_id)
    with pytest.raises(NotFoundError):
        store.consented_purposes(subject_id=subject)


def test_idempotency_records_are_written_once(store: Store, clock: FakeClock) -> None:
    shop = new_tenant(store)
    subject = enroll_one(store, clock, tenant_id=shop.tenant_id).subject_id
    assert store.find_idempotency(tenant_id=shop.tenant_id, key_sha256="a" * 64) is None
    clock.advance(seconds=60)
    first = store.save_idempotency(
        tenant_id=shop.tenant_id,
        key_sha256="a" * 64,
        request_sha256="b" * 64,
        response_json='{"approved": true}',
        subject_id=subject,
        audit_detail="amount=12.50 currency=EUR approved",
    )
    again = store.save_idempotency(
        tenant_id=shop.tenant_id,
        key_sha256="a" * 64,
        request_sha256="c" * 64,
        response_json='{"approved": false}',
        subject_id=subject,
        audit_detail="second try",
    )
    assert again == first
    assert store.find_idempotency(tenant_id=shop.tenant_id, key_sha256="a" * 64) == first
    other = new_tenant(store, "other")
    assert store.find_idempotency(tenant_id=other.tenant_id, key_sha256="a" * 64) is None
    since, until = clock.now - timedelta(hours=1), clock.now + timedelta(seconds=1)
    assert store.count_audit_events(event="payment", since=since, until=until) == 1
    export = store.export_subject(subject_id=subject, tenant_id=shop.tenant_id)
    assert export.last_interaction_at == clock.now  # the payment touched the person


def test_count_audit_events_by_window_and_detail(store: Store, clock: FakeClock) -> None:
    start = clock.now
    for detail in ("kind=subpoena;disclosed=none;", "kind=warrant;disclosed=partial;", "50%_off;disclosed=partial;"):
        store.append_audit(event="legal_request", tenant_id=None, subject_ref_hash=None, detail=detail)
        clock.advance(seconds=10)
    end = clock.now
    assert store.count_audit_events(event="legal_request", since=start, until=end) == 3
    assert store.count_audit_events(event="legal_request", since=start + timedelta(seconds=10), until=end) == 2
    assert store.count_audit_events(event="legal_request", since=start, until=start + timedelta(seconds=10)) == 1
    assert (
        store.count_audit_events(event="legal_request", since=start, until=end, detail_contains="disclosed=partial;")
        == 2
    )
    assert store.count_audit_events(event="legal_request", since=start, until=end, detail_contains="50%_") == 1
    assert store.count_audit_events(event="legal_request", since=start, until=end, detail_contains="%") == 1
    assert store.count_audit_events(event="enroll", since=start, until=end) == 0
