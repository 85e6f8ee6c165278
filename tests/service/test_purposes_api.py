"""Issue 8 purposes through the HTTP API (real store, recognition double): links at enrollment, entry, age check,
payment with exactly-once Idempotency-Key semantics, and consent purposes enforced per person."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_doubles import photo
from service_fixtures import DoubleService, Merchant, consent_json, open_double_service, palm_photos
from service_live import BACKENDS

from palmid.errors import StorageError
from palmid.payments.gateway import Authorization, AuthorizationRequest
from palmid.payments.sandbox import SandboxGateway
from palmid.service.routes.purposes import GATEWAY_STATE
from palmid_testdata import postgres_schema_url

ALL_PURPOSES = ["check_in", "payment", "age_check"]
TOKEN = "tok_sandbox_visa_4242"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DoubleService]:
    yield from open_double_service(tmp_path, identify_rate_per_minute=1000)


@pytest.fixture
def gateway(service: DoubleService) -> SandboxGateway:
    sandbox = SandboxGateway()
    setattr(service.app.state, GATEWAY_STATE, sandbox)
    return sandbox


def enroll(merchant: Merchant, palm: str, *, purposes: list[str] | None = None) -> str:
    response = merchant.enroll(palm_photos(palm), consent=consent_json(purposes=purposes or ALL_PURPOSES))
    assert response.status_code == 201, response.text
    return str(response.json()["subject_ref"])


def link(merchant: Merchant, ref: str, **body: Any) -> httpx.Response:
    return merchant.client.post(f"/v1/subjects/{ref}/links", json=body, headers=merchant.headers)


def identify(merchant: Merchant, palm: str, *, headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    files = {"image": ("probe.jpg", photo(palm), "image/jpeg")}
    return merchant.client.post(
        "/v1/identifications", files=files, data=fields, headers={**merchant.headers, **(headers or {})}
    )


def pay(
    merchant: Merchant, palm: str, *, key: str | None, amount: str = "12.50", currency: str = "EUR"
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return identify(merchant, palm, headers=headers, purpose="payment", amount=amount, currency=currency)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def adult_birth_date(*, years: int, days_short: int = 0) -> str:
    today = date.today()
    birthday = today.replace(year=today.year - years) if (today.month, today.day) != (2, 29) else date(2000, 3, 1)
    return date.fromordinal(birthday.toordinal() + days_short).isoformat()


def test_entry_gives_a_ref_and_only_this_merchants_membership(service: DoubleService) -> None:
    ref = enroll(service.shop, "ana")
    linked = link(service.shop, ref, payment_token=TOKEN, membership_id="GOLD-0042")
    assert linked.status_code == 200, linked.text
    assert linked.json() == {"subject_ref": ref, "linked": ["payment_token", "membership_id"]}
    entry = identify(service.shop, "ana", purpose="entry")
    assert entry.json() == {"purpose": "entry", "matched": True, "subject_ref": ref, "membership_id": "GOLD-0042"}
    elsewhere = identify(service.stadium, "ana", purpose="entry").json()
    assert elsewhere["matched"] is True and elsewhere["subject_ref"] not in (None, ref)
    assert elsewhere["membership_id"] is None  # the shop's membership id never reaches the stadium
    assert TOKEN not in entry.text + str(elsewhere)
    nobody = identify(service.shop, "zed", purpose="entry").json()
    assert nobody == {"purpose": "entry", "matched": False, "subject_ref": None, "membership_id": None}
    plain = service.shop.identify(photo("ana")).json()  # no purpose: the issue-4 answer, unchanged
    assert plain == {"matched": True, "subject_ref": ref}


def test_card_numbers_and_documents_are_refused_and_nothing_is_stored(service: DoubleService) -> None:
    ref = enroll(service.shop, "ben")
    for pan in ("4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444"):
        refused = link(service.shop, ref, payment_token=pan)
        assert refused.status_code == 422 and error_code(refused) == "card_number_refused"
        assert pan not in refused.text
    smuggled = link(
        service.shop,
        ref,
        age_attestation={"date_of_birth": "1990-01-01", "document_checked": True, "document_image": "aGVsbG8="},
    )
    assert smuggled.status_code == 422  # the document itself is never accepted
    unchecked = link(service.shop, ref, age_attestation={"date_of_birth": "1990-01-01", "document_checked": False})
    assert error_code(unchecked) == "age_attestation_unchecked"
    assert error_code(link(service.shop, ref)) == "nothing_to_link"
    subject_id = service.store.resolve_ref(subject_ref=ref, tenant_id=service.shop_tenant_id)
    stored = service.store.load_attributes(subject_id=subject_id, tenant_id=service.shop_tenant_id)
    assert (stored.payment_token, stored.membership_id, stored.date_of_birth) == (None, None, None)


def test_links_need_scope_consent_and_the_merchants_own_ref(service: DoubleService) -> None:
    ref = enroll(service.shop, "cleo", purposes=["check_in"])
    refused = link(service.shop, ref, payment_token=TOKEN)
    assert refused.status_code == 403 and error_code(refused) == "purpose_not_consented"
    dob = {"date_of_birth": "1990-01-01", "document_checked": True}
    assert error_code(link(service.shop, ref, age_attestation=dob)) == "purpose_not_consented"
    assert link(service.shop, ref, membership_id="M-1").status_code == 200
    stadium_ref = identify(service.stadium, "cleo", purpose="entry").json()["subject_ref"]
    assert link(service.stadium, stadium_ref, membership_id="S-1").status_code == 403  # no enroll scope
    assert link(service.shop, stadium_ref, membership_id="S-1").status_code == 404  # another merchant's ref
    assert link(service.shop, "sr_" + "a" * 26, membership_id="S-1").status_code == 404
    anonymous = service.client.post(f"/v1/subjects/{ref}/links", json={"membership_id": "X-1"})
    assert anonymous.status_code == 401


def test_a_purpose_the_person_did_not_consent_to_is_refused(service: DoubleService, gateway: SandboxGateway) -> None:
    ref = enroll(service.shop, "dora", purposes=["check_in"])
    assert link(service.shop, ref, membership_id="M-7").status_code == 200
    for fields in ({"purpose": "age_check", "min_age": "18"}, {"purpose": "payment", "amount": "1", "currency": "EUR"}):
        refused = identify(service.shop, "dora", headers={"Idempotency-Key": "key-dora-0001"}, **fields)
        assert refused.status_code == 403 and error_code(refused) == "purpose_not_consented"
        assert ref not in refused.text
    assert gateway.calls == 0
    assert identify(service.shop, "dora", purpose="entry").json()["matched"] is True
    unknown = identify(service.shop, "dora", purpose="surveillance")
    assert unknown.status_code == 422 and error_code(unknown) == "invalid_purpose"


def test_age_check_says_yes_or_no_and_never_the_birth_date(service: DoubleService) -> None:
    ref = enroll(service.shop, "eve")
    birth = adult_birth_date(years=18, days_short=1)  # turns 18 tomorrow
    attestation = {"date_of_birth": birth, "document_checked": True}
    assert link(service.shop, ref, age_attestation=attestation).status_code == 200
    young = identify(service.stadium, "eve", purpose="age_check", min_age="18")  # works at any merchant
    assert young.json() == {"purpose": "age_check", "matched": True, "meets_min_age": False}
    old_enough = identify(service.stadium, "eve", purpose="age_check", min_age="16")
    assert old_enough.json() == {"purpose": "age_check", "matched": True, "meets_min_age": True}
    for response in (young, old_enough):
        assert birth not in response.text and birth.replace("-", "") not in response.text
    stranger = identify(service.shop, "finn", purpose="age_check", min_age="18").json()
    assert stranger == {"purpose": "age_check", "matched": False, "meets_min_age": False}
    enroll(service.shop, "gus")  # consented, but no attestation on file: fails closed
    assert identify(service.shop, "gus", purpose="age_check", min_age="18").json()["meets_min_age"] is False
    bad = identify(service.shop, "eve", purpose="age_check", min_age="eighteen")
    assert bad.status_code == 422 and error_code(bad) == "invalid_min_age"


def test_payment_is_exactly_once_per_idempotency_key(service: DoubleService, gateway: SandboxGateway) -> None:
    ref = enroll(service.shop, "hana")
    assert link(service.shop, ref, payment_token=TOKEN).status_code == 200
    first = pay(service.shop, "hana", key="order-0001-abcdef")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["purpose"] == "payment" and body["matched"] is True
    authorization = body["authorization"]
    assert authorization["status"] == "approved" and authorization["amount"] == "12.50"
    assert authorization["currency"] == "EUR"
    assert authorization["gateway"] == "sandbox" and authorization["sandbox"] is True  # clearly labelled
    assert "subject_ref" not in body and TOKEN not in first.text
    again = pay(service.shop, "hana", key="order-0001-abcdef")
    assert again.status_code == 200 and again.json() == body
    assert pay(service.shop, "nobody", key="order-0001-abcdef").json() == body  # replay: no new palm search
    assert gateway.calls == 1
    conflict = pay(service.shop, "hana", key="order-0001-abcdef", amount="13.00")
    assert conflict.status_code == 422 and error_code(conflict) == "idempotency_conflict"
    other = pay(service.shop, "hana", key="order-0002-abcdef").json()
    assert other["authorization"]["authorization_id"] != authorization["authorization_id"]
    missing = pay(service.shop, "hana", key=None)
    assert missing.status_code == 422 and error_code(missing) == "idempotency_key_required"
    assert error_code(pay(service.shop, "hana", key="order-0003-abcdef", currency="XXX")) == "invalid_currency"
    elsewhere = pay(service.stadium, "hana", key="order-0001-abcdef")  # keys are scoped to the merchant
    assert elsewhere.status_code == 200
    assert elsewhere.json()["authorization"]["authorization_id"] != authorization["authorization_id"]
    assert gateway.calls == 3


class FailOnce:
    """Wraps Store.save_idempotency: the first call fails as if the database went away after the gateway call."""

    def __init__(self, save: Any, error: Exception) -> None:
        self.save = save
        self.error: Exception | None = error

    def __call__(self, **kwargs: Any) -> Any:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.save(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("error", "status"),
    [(RuntimeError("crash after the gateway call"), 500), (StorageError("database went away"), 503)],
)
def test_payment_survives_a_500_and_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, backend: str
) -> None:
    stack = ExitStack()
    database_url = stack.enter_context(postgres_schema_url(prefix="svc")) if backend == "postgres" else None
    with stack:
        run_crash_and_restart(tmp_path, monkeypatch, error=error, status=status, database_url=database_url)


def run_crash_and_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, error: Exception, status: int, database_url: str | None
) -> None:
    for service in open_double_service(tmp_path, database_url=database_url):
        gateway = SandboxGateway()
        setattr(service.app.state, GATEWAY_STATE, gateway)
        ref = enroll(service.shop, "ines")
        assert link(service.shop, ref, payment_token=TOKEN).status_code == 200
        monkeypatch.setattr(service.store, "save_idempotency", FailOnce(service.store.save_idempotency, error))
        crashed = pay(service.shop, "ines", key="order-crash-0001")
        assert crashed.status_code == status  # the gateway authorized, the record was not committed
        retried = pay(service.shop, "ines", key="order-crash-0001")
        assert retried.status_code == 200
        authorization = retried.json()["authorization"]
        assert gateway.calls == 2  # asked again with the same key: the gateway returns the same authorization
        shop_key = service.shop.headers
    for restarted in open_double_service(tmp_path, database_url=database_url):  # a new process, same database
        gateway = SandboxGateway()
        setattr(restarted.app.state, GATEWAY_STATE, gateway)
        merchant = Merchant(restarted.client, shop_key["Authorization"].removeprefix("Bearer "))
        replay = pay(merchant, "ines", key="order-crash-0001")
        assert replay.status_code == 200 and replay.json()["authorization"] == authorization
        assert gateway.calls == 0
        now = restarted.store_clock.now
        payments = restarted.store.count_audit_events(
            event="payment", since=now - timedelta(days=1), until=now + timedelta(days=1)
        )
        assert payments == 1


def test_payment_needs_a_linked_token(service: DoubleService, gateway: SandboxGateway) -> None:
    enroll(service.shop, "jon")
    refused = pay(service.shop, "jon", key="order-jon-0001")
    assert refused.status_code == 409 and error_code(refused) == "payment_not_linked"
    assert gateway.calls == 0


def test_erasure_shreds_linked_attributes(service: DoubleService) -> None:
    ref = enroll(service.shop, "kai")
    attestation = {"date_of_birth": "1991-04-05", "document_checked": True}
    assert link(service.shop, ref, payment_token=TOKEN, age_attestation=attestation).status_code == 200
    database = service.settings.data_dir / "palmid.db"
    before = database.read_bytes() + Path(str(database) + "-wal").read_bytes()
    assert TOKEN.encode() not in before and b"1991-04-05" not in before  # encrypted at rest
    receipt = service.shop.erase(ref).json()
    assert any(item.startswith("attributes:") for item in receipt["destroyed"])
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT COUNT(*) FROM subject_attributes").fetchone() == (0,)
    assert identify(service.shop, "kai", purpose="entry").json()["matched"] is False


def test_export_lists_linked_purposes_but_never_their_values(service: DoubleService) -> None:
    ref = enroll(service.shop, "lou")
    attestation = {"date_of_birth": "1988-08-08", "document_checked": True}
    links = {"payment_token": TOKEN, "membership_id": "M-55", "age_attestation": attestation}
    assert link(service.shop, ref, **links).status_code == 200
    exported = service.client.get(f"/v1/subjects/{ref}/export", headers=service.shop.headers)
    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert body["linked"] == ["payment_token", "membership_id", "date_of_birth"]
    assert body["membership_id"] == "M-55"
    assert body["consent"]["purposes"] == ALL_PURPOSES
    assert "link" in {event["event"] for event in body["events"]}
    assert TOKEN not in exported.text and "1988" not in exported.text
    assert "template" not in {key.lower() for key in body}


class BarrierGateway(SandboxGateway):
    """Holds each authorization until two requests are inside the gateway at once (forces the race)."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2, timeout=20)

    def authorize(self, *, request: AuthorizationRequest) -> Authorization:
        self.barrier.wait()
        return super().authorize(request=request)


def test_two_concurrent_payments_with_one_key_record_one_outcome(service: DoubleService) -> None:
    gateway = BarrierGateway()
    setattr(service.app.state, GATEWAY_STATE, gateway)
    ref = enroll(service.shop, "moe")
    assert link(service.shop, ref, payment_token=TOKEN).status_code == 200
    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(lambda _: pay(service.shop, "moe", key="order-race-0001"), range(2)))
    assert [response.status_code for response in responses] == [200, 200]
    assert responses[0].json() == responses[1].json()
    assert gateway.calls == 2  # both were inside the gateway: it answered both with the same authorization
    since, until = service.store_clock.now - timedelta(days=1), service.store_clock.now + timedelta(days=1)
    assert service.store.count_audit_events(event="payment", since=since, until=until) == 1
