"""Ed25519 erasure receipts: verifiable by anyone with the public key; any change breaks the signature."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, datetime

import pytest

from palmid.errors import CryptoError
from palmid.privacy.receipts import ReceiptSigner, verify_receipt

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _receipt(signer: ReceiptSigner):  # type: ignore[no-untyped-def]
    return signer.sign_erasure(
        receipt_id="r1",
        subject_ref="sr_" + "a" * 26,
        tenant_id="t1",
        erased_at=NOW,
        destroyed=("data_key:1", "templates:1"),
        consent_record_sha256="0" * 64,
    )


def test_receipt_verifies_and_detects_any_change() -> None:
    signer = ReceiptSigner(private_key_bytes=secrets.token_bytes(32))
    receipt = _receipt(signer)
    assert verify_receipt(receipt=receipt, public_key_b64=signer.public_key_b64)
    for change in (
        {"subject_ref": "sr_" + "b" * 26},
        {"erased_at": NOW.replace(year=2027)},
        {"destroyed": ("templates:1",)},
        {"tenant_id": "t2"},
        {"signature": receipt.signature[:-2] + ("AA" if not receipt.signature.endswith("AA") else "BB")},
        {"signature": "not base64 !!"},
    ):
        assert not verify_receipt(receipt=dataclasses.replace(receipt, **change), public_key_b64=signer.public_key_b64)


def test_receipt_from_another_key_is_refused() -> None:
    signer, other = (ReceiptSigner(private_key_bytes=secrets.token_bytes(32)) for _ in range(2))
    receipt = _receipt(other)
    assert not verify_receipt(receipt=receipt, public_key_b64=signer.public_key_b64)
    assert not verify_receipt(
        receipt=dataclasses.replace(receipt, public_key=signer.public_key_b64), public_key_b64=signer.public_key_b64
    )


def test_bad_signing_key_fails_closed() -> None:
    with pytest.raises(CryptoError):
        ReceiptSigner(private_key_bytes=b"short")
