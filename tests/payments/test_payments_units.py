"""Money, card-number refusal, age attestation, the sandbox gateway and idempotency fingerprints."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from palmid.errors import ForbiddenError, StorageError, ValidationFailed
from palmid.payments.attributes import (
    SubjectLinks,
    age_on,
    check_date_of_birth,
    check_membership_id,
    check_payment_token,
    looks_like_card_number,
)
from palmid.payments.gateway import AuthorizationRequest
from palmid.payments.idempotency import (
    StoredOutcome,
    check_idempotency_key,
    check_same_request,
    request_fingerprint,
    scoped_key_sha256,
)
from palmid.payments.money import Money, parse_money
from palmid.payments.purposes import check_purpose_consented, parse_min_age, parse_purpose
from palmid.payments.sandbox import DECLINE_TOKEN, UNAVAILABLE_TOKEN, SandboxGateway
from palmid.storage.records import IdempotencyRecord


def test_money_is_exact_in_minor_units() -> None:
    assert parse_money(amount="12.50", currency="eur") == Money(amount_minor=1250, currency="EUR")
    assert parse_money(amount="0.01", currency="USD").amount_minor == 1
    assert parse_money(amount="1500", currency="JPY") == Money(amount_minor=1500, currency="JPY")
    assert Money(amount_minor=1205, currency="EUR").as_decimal_text() == "12.05"
    assert Money(amount_minor=7, currency="JPY").as_decimal_text() == "7"


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("12.50", "XXX", "invalid_currency"),
        ("12.50", None, "invalid_currency"),
        ("-1", "EUR", "invalid_amount"),
        ("0", "EUR", "invalid_amount"),
        ("1.234", "EUR", "invalid_amount"),
        ("1.5", "JPY", "invalid_amount"),
        ("1e3", "EUR", "invalid_amount"),
        ("100000.01", "EUR", "invalid_amount"),
        (None, "EUR", "invalid_amount"),
    ],
)
def test_bad_amounts_are_refused(amount: str | None, currency: str | None, code: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_money(amount=amount, currency=currency)
    assert info.value.code == code


@pytest.mark.parametrize(
    "text",
    ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "tok_4111111111111111", "378282246310005"],
)
def test_card_numbers_are_refused(text: str) -> None:
    assert looks_like_card_number(text)
    with pytest.raises(ValidationFailed) as info:
        check_payment_token(text)
    assert info.value.code == "card_number_refused"
    with pytest.raises(ValidationFailed):
        check_membership_id(text)


def test_processor_tokens_are_accepted() -> None:
    assert check_payment_token(" tok_1NxYz2AbCdEf ") == "tok_1NxYz2AbCdEf"
    assert check_payment_token("pm_card_visa") == "pm_card_visa"
    assert check_membership_id("GOLD-000123") == "GOLD-000123"
    for bad in ("short", "tok with spaces", "tok_<script>"):
        with pytest.raises(ValidationFailed) as info:
            check_payment_token(bad)
        assert info.value.code == "invalid_payment_token"


def test_age_is_counted_in_whole_years() -> None:
    birth = date(2008, 11, 26)
    assert age_on(date_of_birth=birth, today=date(2026, 11, 25)) == 17
    assert age_on(date_of_birth=birth, today=date(2026, 11, 26)) == 18
    leap = date(2008, 2, 29)
    assert age_on(date_of_birth=leap, today=date(2026, 2, 28)) == 17
    assert age_on(date_of_birth=leap, today=date(2026, 3, 1)) == 18


def test_age_attestation_needs_a_checked_document_and_a_plausible_date() -> None:
    today = date(2026, 11, 25)
    assert check_date_of_birth(date(1990, 5, 1), today=today, document_checked=True) == date(1990, 5, 1)
    with pytest.raises(ValidationFailed) as info:
        check_date_of_birth(date(1990, 5, 1), today=today, document_checked=False)
    assert info.value.code == "age_attestation_unchecked"
    for implausible in (date(2027, 1, 1), date(1850, 1, 1)):
        with pytest.raises(ValidationFailed) as info:
            check_date_of_birth(implausible, today=today, document_checked=True)
        assert info.value.code == "invalid_date_of_birth"
    assert SubjectLinks(payment_token="tok_abcdefgh", date_of_birth=today).kinds == ("payment_token", "date_of_birth")


def test_purposes_follow_the_consent_vocabulary_of_the_kiosk() -> None:
    assert parse_purpose(" entry ") == "entry"
    with pytest.raises(ValidationFailed) as info:
        parse_purpose("surveillance")
    assert info.value.code == "invalid_purpose"
    check_purpose_consented("entry", consented=("check_in",))  # the kiosk's word for entry
    check_purpose_consented("payment", consented=("check_in", "payment"))
    with pytest.raises(ForbiddenError) as refused:
        check_purpose_consented("age_check", consented=("check_in", "payment"))
    assert refused.value.code == "purpose_not_consented"
    assert parse_min_age("18") == 18
    for bad in (None, "", "-1", "0", "18.5", "abc", "200"):
        with pytest.raises(ValidationFailed):
            parse_min_age(bad)


def _request(*, token: str = "tok_sandbox_visa", key: str = "k" * 64, minor: int = 1250) -> AuthorizationRequest:
    return AuthorizationRequest(
        payment_token=token, money=Money(amount_minor=minor, currency="EUR"), merchant_id="m1", idempotency_key=key
    )


def test_sandbox_gateway_is_labelled_and_idempotent_per_key() -> None:
    gateway = SandboxGateway()
    assert gateway.name == "sandbox" and gateway.sandbox is True
    first = gateway.authorize(request=_request())
    again = SandboxGateway().authorize(request=_request())  # e.g. after a crash: a fresh process
    assert first == again
    assert first.status == "approved" and first.sandbox and first.gateway == "sandbox"
    assert first.authorization_id.startswith("sbx_auth_")
    other = gateway.authorize(request=_request(key="x" * 64))
    assert other.authorization_id != first.authorization_id
    declined = gateway.authorize(request=_request(token=DECLINE_TOKEN))
    assert (declined.status, declined.decline_code) == ("declined", "card_declined")
    assert gateway.authorize(request=_request(minor=10_000_000)).decline_code == "amount_limit"
    with pytest.raises(StorageError) as info:
        gateway.authorize(request=_request(token=UNAVAILABLE_TOKEN))
    assert info.value.code == "gateway_unavailable"
    assert gateway.calls == 5


def test_idempotency_keys_fingerprints_and_conflicts() -> None:
    assert check_idempotency_key(" 9f0c7a2e-5b1d-4c4e-9a55-0d6c2f1b8e11 ") == "9f0c7a2e-5b1d-4c4e-9a55-0d6c2f1b8e11"
    for missing in (None, "", "   "):
        with pytest.raises(ValidationFailed) as info:
            check_idempotency_key(missing)
        assert info.value.code == "idempotency_key_required"
    for bad in ("short", "has space inside", "é" * 10, "k" * 256):
        with pytest.raises(ValidationFailed) as info:
            check_idempotency_key(bad)
        assert info.value.code == "invalid_idempotency_key"
    assert scoped_key_sha256(tenant_id="a", key="key-12345") != scoped_key_sha256(tenant_id="b", key="key-12345")
    eur = request_fingerprint(purpose="payment", money=Money(amount_minor=1250, currency="EUR"))
    assert eur == request_fingerprint(purpose="payment", money=Money(amount_minor=1250, currency="EUR"))
    assert eur != request_fingerprint(purpose="payment", money=Money(amount_minor=1251, currency="EUR"))
    outcome = StoredOutcome.from_authorization(SandboxGateway().authorize(request=_request()))
    assert StoredOutcome.from_json(outcome.to_json()) == outcome
    record = IdempotencyRecord(
        tenant_id="m1",
        key_sha256="0" * 64,
        request_sha256=eur,
        response_json=outcome.to_json(),
        created_at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    assert check_same_request(record, request_sha256=eur) == outcome
    with pytest.raises(ValidationFailed) as info:
        check_same_request(record, request_sha256="1" * 64)
    assert info.value.code == "idempotency_conflict"
