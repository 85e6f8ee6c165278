"""``Idempotency-Key`` handling: exactly-once payments.

A merchant sends a unique key with each payment. The first request that completes stores an idempotency record
(the merchant, a hash of the key, a fingerprint of the request and the outcome) in the SAME database transaction as
its audit event; a repeat with the same key and the same request gets the stored outcome without a second palm
search or gateway call, even after a crash or a 500; a repeat with the same key and another request gets 422
``idempotency_conflict``. If palmid crashes after the gateway call but before the commit, the retry calls the
gateway again with the same (merchant-scoped) key, and the gateway -- idempotent per key -- returns the same
authorization, so money moves once.

The fingerprint covers the purpose, amount and currency, not the photo: a retry may carry a new photo of the same
palm, and the key already names the transaction. Records hold no subject id or ref.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from palmid.errors import ValidationFailed
from palmid.payments.gateway import Authorization, AuthorizationStatus
from palmid.payments.money import Money
from palmid.storage.records import IdempotencyRecord

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{8,255}$")


def check_idempotency_key(value: str | None) -> str:
    """8-255 printable ASCII characters without spaces (a UUID is a good key)."""
    if value is None or not value.strip():
        raise ValidationFailed(
            f"a payment needs an {IDEMPOTENCY_HEADER} header (e.g. a new UUID per purchase)",
            code="idempotency_key_required",
        )
    clean = value.strip()
    if not _KEY_RE.match(clean):
        raise ValidationFailed(
            f"{IDEMPOTENCY_HEADER} must be 8-255 printable ASCII characters without spaces",
            code="invalid_idempotency_key",
        )
    return clean


def scoped_key_sha256(*, tenant_id: str, key: str) -> str:
    """The key as stored and as passed on to the gateway: scoped to the merchant, hashed."""
    return hashlib.sha256(f"palmid-idem/v1|{tenant_id}|{key}".encode()).hexdigest()


def request_fingerprint(*, purpose: str, money: Money) -> str:
    canonical = json.dumps(
        {"purpose": purpose, "amount_minor": money.amount_minor, "currency": money.currency}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class StoredOutcome:
    """What an idempotency record keeps: the authorization (no person identifier)."""

    authorization_id: str
    status: AuthorizationStatus
    amount_minor: int
    currency: str
    gateway: str
    sandbox: bool
    decline_code: str | None

    @classmethod
    def from_authorization(cls, authorization: Authorization) -> StoredOutcome:
        return cls(
            authorization_id=authorization.authorization_id,
            status=authorization.status,
            amount_minor=authorization.money.amount_minor,
            currency=authorization.money.currency,
            gateway=authorization.gateway,
            sandbox=authorization.sandbox,
            decline_code=authorization.decline_code,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "authorization_id": self.authorization_id,
                "status": self.status,
                "amount_minor": self.amount_minor,
                "currency": self.currency,
                "gateway": self.gateway,
                "sandbox": self.sandbox,
                "decline_code": self.decline_code,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> StoredOutcome:
        data = json.loads(text)
        status = data["status"]
        if status not in ("approved", "declined"):
            raise ValidationFailed("corrupt idempotency record", code="idempotency_record_corrupt")
        return cls(
            authorization_id=str(data["authorization_id"]),
            status="approved" if status == "approved" else "declined",
            amount_minor=int(data["amount_minor"]),
            currency=str(data["currency"]),
            gateway=str(data["gateway"]),
            sandbox=bool(data["sandbox"]),
            decline_code=None if data["decline_code"] is None else str(data["decline_code"]),
        )


def check_same_request(record: IdempotencyRecord, *, request_sha256: str) -> StoredOutcome:
    """The stored outcome for a repeat; 422 ``idempotency_conflict`` if the key was used for another request."""
    if record.request_sha256 != request_sha256:
        raise ValidationFailed(
            f"this {IDEMPOTENCY_HEADER} was already used for a different request", code="idempotency_conflict"
        )
    return StoredOutcome.from_json(record.response_json)
