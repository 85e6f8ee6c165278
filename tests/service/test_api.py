"""The v1 API over the real store with the recognition double: the flow and every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service_doubles import photo
from service_fixtures import (
    DoubleService,
    Merchant,
    assert_no_score_fields,
    consent_json,
    open_double_service,
    palm_photos,
)

from palmid.privacy.receipts import ErasureReceipt, verify_receipt


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DoubleService]:
    yield from open_double_service(tmp_path, identify_rate_per_minute=1000)


def _enroll(merchant: Merchant, palm: str) -> str:
    response = merchant.enroll(palm_photos(palm))
    assert response.status_code == 201, response.text
    return str(response.json()["subject_ref"])


def test_whole_flow_two_merchants(service: DoubleService) -> None:
    ref_shop = _enroll(service.shop, "alice")
    assert set(service.shop.responses[-1].json()) == {"subject_ref"}

    at_shop = service.shop.identify(photo("alice", 4)).json()
    at_stadium = service.stadium.identify(photo("alice", 5)).json()
    assert at_shop == {"matched": True, "subject_ref": ref_shop}
    assert at_stadium["matched"] is True
    ref_stadium = at_stadium["subject_ref"]
    assert ref_stadium != ref_shop  # pairwise refs: not linkable across merchants
    assert service.stadium.identify(photo("alice", 6)).json()["subject_ref"] == ref_stadium  # but stable

    assert service.shop.verify(photo("alice", 7), ref_shop).json() == {"matched": True}
    assert service.stadium.verify(photo("alice", 7), ref_stadium).json() == {"matched": True}
    assert service.shop.verify(photo("bob", 1), ref_shop).json() == {"matched": False}
    assert service.shop.identify(photo("bob", 1)).json() == {"matched": False, "subject_ref": None}

    erased = service.shop.erase(ref_shop)
    assert erased.status_code == 200
    body = erased.json()
    assert body["subject_ref"] == ref_shop
    receipt = ErasureReceipt(
        receipt_id=body["receipt_id"],
        subject_ref=body["subject_ref"],
        tenant_id=body["tenant_id"],
        erased_at=datetime.fromisoformat(body["erased_at"]),
        destroyed=tuple(body["destroyed"]),
        consent_record_sha256=body["consent_record_sha256"],
        public_key=body["public_key"],
        signature=body["signature"],
    )
    assert verify_receipt(receipt=receipt, public_key_b64=service.store.receipt_public_key_b64)

    for merchant in (service.shop, service.stadium):
        assert merchant.identify(photo("alice", 8)).json() == {"matched": False, "subject_ref": None}
    assert service.shop.verify(photo("alice", 8), ref_shop).status_code == 404
    assert service.stadium.verify(photo("alice", 8), ref_stadium).status_code == 404
    assert service.shop.erase(ref_shop).status_code == 404
    # The palm can enroll again after erasure (a new person record, a new ref).
    assert _enroll(service.shop, "alice") != ref_shop


def test_no_consent_is_refused_before_any_photo_is_decoded(service: DoubleService) -> None:
    response = service.shop.enroll(palm_photos("carol"), with_consent=False)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "consent_required"
    assert service.recognizer.decoded == []


@pytest.mark.parametrize(
    "consent",
    [
        "not json",
        "[]",
        consent_json(notice_version="no-such-notice"),
        consent_json(purposes=[]),
        consent_json(purposes=["surveillance"]),
        consent_json(accepted_at=datetime.now(UTC) + timedelta(hours=2)),
        consent_json(accepted_at=datetime.now(UTC) - timedelta(days=3)),
        consent_json(accepted_at="2026-01-01T12:00:00"),  # no time zone
    ],
)
def test_invalid_consent_is_refused_before_any_photo_is_decoded(service: DoubleService, consent: str) -> None:
    response = service.shop.enroll(palm_photos("carol"), consent=consent)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "consent_invalid"
    assert service.recognizer.decoded == []


def test_consent_for_the_built_in_notice(service: DoubleService) -> None:
    response = service.shop.enroll(palm_photos("dan"), consent=consent_json(notice_version="2026-01", purposes=["pay"]))
    assert response.status_code == 201


def test_wrong_scope_missing_bad_and_revoked_keys(service: DoubleService) -> None:
    ref = _enroll(service.shop, "erin")
    refused = [
        service.stadium.enroll(palm_photos("frank")),
        service.stadium.erase(ref),
    ]
    for response in refused:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden_scope"

    anonymous = service.client.post("/v1/identifications", files={"image": ("p", photo("erin"), "image/jpeg")})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = Merchant(service.client, "not-a-key").identify(photo("erin"))
    assert wrong.status_code == 401

    service.store.revoke_key(key_id=service.shop_key_id)
    revoked = service.shop.identify(photo("erin"))
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "key_revoked"


def test_other_merchants_ref_is_indistinguishable_from_an_unknown_one(service: DoubleService) -> None:
    ref_shop = _enroll(service.shop, "gina")
    other = service.stadium.verify(photo("gina"), ref_shop)
    unknown = service.stadium.verify(photo("gina"), "sr_" + "a" * 26)
    malformed = service.stadium.verify(photo("gina"), "whatever")
    for response in (other, unknown, malformed):
        assert response.status_code == 404
        assert (
            response.json() == other.json() == {"error": {"code": "not_found", "message": "unknown subject reference"}}
        )
    assert service.shop.verify(photo("gina"), ref_shop).json() == {"matched": True}


def test_bad_images_get_a_reason_per_photo(service: DoubleService) -> None:
    photos = [photo("hana", 1), b"QUALITY:move_closer", b"NOHAND", photo("hana", 2)]
    response = service.shop.enroll(photos)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "poor_quality"
    assert response.json()["error"]["images"] == [{"index": 1, "code": "move_closer"}, {"index": 2, "code": "no_hand"}]

    unreadable = service.shop.enroll([photo("hana", 1), b"\x00garbage", photo("hana", 2)])
    assert unreadable.status_code == 422
    assert unreadable.json()["error"]["code"] == "unreadable_image"
    assert unreadable.json()["error"]["images"] == [{"index": 1, "code": "unreadable_image"}]

    probe = service.shop.identify(b"QUALITY:too_dark")
    assert probe.status_code == 422
    assert probe.json()["error"]["code"] == "too_dark"
    assert service.store.count_subjects() == 0


def test_photos_of_two_palms_are_not_merged(service: DoubleService) -> None:
    response = service.shop.enroll([photo("ivan", 1), photo("ivan", 2), photo("judy", 1), photo("judy", 2)])
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "inconsistent_images"
    assert [issue["code"] for issue in error["images"]] == ["different_palm", "different_palm"]
    assert service.store.count_subjects() == 0


@pytest.mark.parametrize("count", [0, 1, 2, 11])
def test_wrong_number_of_enrollment_photos(service: DoubleService, count: int) -> None:
    response = service.shop.enroll([photo("kim", n) for n in range(count)])
    assert response.status_code == 422
    expected = {0: "invalid_request", 11: "too_many_images"}.get(count, "wrong_image_count")  # 0 files: not multipart
    assert response.json()["error"]["code"] == expected


def test_already_enrolled_without_saying_whose(service: DoubleService) -> None:
    ref = _enroll(service.shop, "leo")
    again = service.shop.enroll(palm_photos("leo"))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_enrolled"
    assert ref not in again.text
    assert service.store.count_subjects() == 1


def test_verification_lockout_after_five_failures(service: DoubleService) -> None:
    ref = _enroll(service.shop, "mia")
    for _ in range(5):
        assert service.shop.verify(photo("impostor"), ref).json() == {"matched": False}
    locked = service.shop.verify(photo("mia"), ref)  # even the right palm: back-off first
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "locked_out"
    assert int(locked.headers["retry-after"]) >= 1


def test_identification_rate_limit_per_key(tmp_path: Path) -> None:
    for service in open_double_service(tmp_path, identify_rate_per_minute=2):
        assert service.shop.identify(photo("ned")).status_code == 200
        assert service.shop.identify(photo("ned")).status_code == 200
        limited = service.shop.identify(photo("ned"))
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert limited.headers["retry-after"] == "30"
        assert service.stadium.identify(photo("ned")).status_code == 200  # another key has its own budget
        service.clock_s[0] += 30.0
        assert service.shop.identify(photo("ned")).status_code == 200


def test_oversized_photo_is_413(tmp_path: Path) -> None:
    for service in open_double_service(tmp_path, max_image_bytes=2048):
        big = photo("olga") + b"\x00" * 4096
        assert service.shop.identify(big).status_code == 413
        response = service.shop.enroll([photo("olga", 1), big, photo("olga", 2)])
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "image_too_large"


def test_index_is_rebuilt_from_the_store_at_start(tmp_path: Path) -> None:
    for first in open_double_service(tmp_path):
        ref = _enroll(first.shop, "pia")
    for second in open_double_service(tmp_path):
        shop = second.merchant(scopes=frozenset({"identify"}), name="shop-2")[0]
        assert shop.identify(photo("pia")).json()["matched"] is True
        assert second.store.count_subjects() == 1
    assert ref


def test_health_metrics_and_openapi(service: DoubleService) -> None:
    ref = _enroll(service.shop, "quinn")
    service.shop.erase(ref)
    assert service.client.get("/healthz").json() == {"status": "ok"}
    policy = service.client.get("/v1/policy/retention").json()  # public, no key
    assert policy["max_idle_days"] == service.settings.retention.max_idle_days
    assert policy["max_total_days"] <= 3 * 365
    assert service.shop.responses[0].headers["cache-control"] == "no-store"
    assert service.shop.responses[0].headers["x-content-type-options"] == "nosniff"
    metrics = service.client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'route="/v1/subjects/{subject_ref}"' in text
    assert ref not in text
    assert 'palmid_decisions_total{operation="enroll",outcome="enrolled"} 1' in text
    assert "palmid_enrolled_palms 0" in text
    schema = service.client.get("/openapi.json").json()
    assert {"/v1/enrollments", "/v1/identifications", "/v1/verifications", "/v1/subjects/{subject_ref}"} <= set(
        schema["paths"]
    )
    enrollment_body = schema["paths"]["/v1/enrollments"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in enrollment_body
    assert_no_score_fields(schema["components"]["schemas"])
    assert service.client.get("/docs").status_code == 200


def test_audit_chain_records_decisions(service: DoubleService) -> None:
    ref = _enroll(service.shop, "rosa")
    service.shop.identify(photo("rosa"))
    service.shop.verify(photo("rosa"), ref)
    service.shop.erase(ref)
    verification = service.store.verify_audit()
    assert verification.ok
    assert verification.checked >= 5


def test_export_through_the_merchants_own_ref(service: DoubleService) -> None:
    ref = _enroll(service.shop, "sam")
    service.shop.identify(photo("sam"))
    exported = service.client.get(f"/v1/subjects/{ref}/export", headers=service.shop.headers)
    assert exported.status_code == 200
    body = exported.json()
    assert_no_score_fields(body)
    assert body["subject_ref"] == ref
    assert body["template_count"] >= 1
    assert body["consent"]["given_at_this_merchant"] is True
    assert "identify" in {event["event"] for event in body["events"]}
    stadium_ref = service.stadium.identify(photo("sam")).json()["subject_ref"]
    refused = service.client.get(f"/v1/subjects/{stadium_ref}/export", headers=service.stadium.headers)
    assert refused.status_code == 403  # the stadium key has no data-subject-rights scope
    other = service.client.get(f"/v1/subjects/{stadium_ref}/export", headers=service.shop.headers)
    assert other.status_code == 404


def test_retention_sweep_erases_and_drops_from_the_index(service: DoubleService) -> None:
    from palmid.service.retention import sweep_once

    ref = _enroll(service.shop, "tess")
    assert service.shop.identify(photo("tess")).json()["matched"] is True
    assert sweep_once(service.app.state.palmid) == 0
    service.store_clock.now += timedelta(days=service.settings.retention.max_idle_days + 1)
    assert sweep_once(service.app.state.palmid) == 1
    assert service.shop.identify(photo("tess")).json() == {"matched": False, "subject_ref": None}
    assert service.shop.verify(photo("tess"), ref).status_code == 404


def test_a_palm_erased_behind_the_index_is_never_reported(service: DoubleService) -> None:
    """Even if the store erased someone before the index heard of it, identification says no match."""
    ref = _enroll(service.shop, "uma")
    subject_id = service.store.resolve_ref(subject_ref=ref, tenant_id=service.shop_tenant_id)
    service.store.erase_subject(subject_id=subject_id, tenant_id=service.shop_tenant_id)
    assert service.shop.identify(photo("uma")).json() == {"matched": False, "subject_ref": None}
    assert subject_id not in service.app.state.palmid.matcher


def test_recognition_does_not_block_the_event_loop(service: DoubleService) -> None:
    import threading

    gate = threading.Event()
    service.recognizer.gate = gate
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(service.shop.identify(photo("vic")).status_code))
    worker.start()
    try:
        for _ in range(100):  # wait until the identification is inside the recognizer
            if service.recognizer.decoded:
                break
            threading.Event().wait(0.01)
        assert service.recognizer.decoded
        assert service.client.get("/healthz").status_code == 200  # served while recognition is held
        assert results == []
    finally:
        gate.set()
        worker.join(timeout=30)
    assert results == [200]


def test_consent_is_on_record_before_the_first_photo_is_decoded(service: DoubleService) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(service.settings.effective_database_url)
    seen: list[tuple[int, int]] = []

    def count_rows() -> None:
        with engine.connect() as connection:
            consents = connection.execute(text("SELECT COUNT(*) FROM consents")).scalar_one()
            templates = connection.execute(text("SELECT COUNT(*) FROM templates")).scalar_one()
        seen.append((int(consents), int(templates)))

    service.recognizer.on_decode = count_rows
    try:
        assert service.shop.enroll(palm_photos("wes")).status_code == 201
    finally:
        engine.dispose()
    assert seen[0] == (1, 0)  # consent recorded, no template yet, when the first photo is decoded


def test_concurrent_enrollments_of_one_palm_store_it_once(service: DoubleService) -> None:
    import threading

    gate = threading.Event()
    service.recognizer.gate = gate
    statuses: list[int] = []
    workers = [
        threading.Thread(target=lambda: statuses.append(service.shop.enroll(palm_photos("zed")).status_code))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for _ in range(200):  # both requests inside recognition before either may finish
        if len(service.recognizer.decoded) >= 2:
            break
        threading.Event().wait(0.01)
    gate.set()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(statuses) == [201, 409]
    assert service.store.count_subjects() == 1
