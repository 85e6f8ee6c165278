"""Signed erasure receipts (Ed25519).

The service signing key lives in ``<data_dir>/receipt_signing.key`` (raw 32-byte Ed25519 private key, mode 0600).
The public key is exposed (``Store.receipt_public_key_b64``) so anyone can check a receipt with
:func:`verify_receipt` without trusting the service afterwards.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from palmid.errors import CryptoError

RECEIPT_VERSION = "palmid-erasure-receipt/v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, kw_only=True)
class ErasureReceipt:
    """Proof that a person was erased: which ref, when, what was destroyed; signed by the service."""

    receipt_id: str
    subject_ref: str
    tenant_id: str
    erased_at: datetime
    destroyed: tuple[str, ...]
    consent_record_sha256: str
    public_key: str
    """Base64url Ed25519 public key of the signer."""
    signature: str
    """Base64url Ed25519 signature over :meth:`signed_payload`."""

    def signed_payload(self) -> bytes:
        """The canonical bytes that the signature covers (everything except the signature)."""
        return canonical_receipt_payload(
            receipt_id=self.receipt_id,
            subject_ref=self.subject_ref,
            tenant_id=self.tenant_id,
            erased_at=self.erased_at,
            destroyed=self.destroyed,
            consent_record_sha256=self.consent_record_sha256,
            public_key=self.public_key,
        )


def canonical_receipt_payload(
    *,
    receipt_id: str,
    subject_ref: str,
    tenant_id: str,
    erased_at: datetime,
    destroyed: tuple[str, ...],
    consent_record_sha256: str,
    public_key: str,
) -> bytes:
    """Canonical JSON (sorted keys, no spaces, ASCII) of a receipt's signed fields."""
    payload = {
        "version": RECEIPT_VERSION,
        "receipt_id": receipt_id,
        "subject_ref": subject_ref,
        "tenant_id": tenant_id,
        "erased_at": erased_at.isoformat(),
        "destroyed": list(destroyed),
        "consent_record_sha256": consent_record_sha256,
        "public_key": public_key,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class ReceiptSigner:
    """Signs erasure receipts with the service's Ed25519 key."""

    def __init__(self, *, private_key_bytes: bytes) -> None:
        if len(private_key_bytes) != 32:
            raise CryptoError("receipt signing key must be 32 bytes", code="key_unavailable")
        self._key = Ed25519PrivateKey.from_private_bytes(private_key_bytes)
        self.public_key_b64 = _b64(self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign_erasure(
        self,
        *,
        receipt_id: str,
        subject_ref: str,
        tenant_id: str,
        erased_at: datetime,
        destroyed: tuple[str, ...],
        consent_record_sha256: str,
    ) -> ErasureReceipt:
        """Build and sign a receipt."""
        payload = canonical_receipt_payload(
            receipt_id=receipt_id,
            subject_ref=subject_ref,
            tenant_id=tenant_id,
            erased_at=erased_at,
            destroyed=destroyed,
            consent_record_sha256=consent_record_sha256,
            public_key=self.public_key_b64,
        )
        return ErasureReceipt(
            receipt_id=receipt_id,
            subject_ref=subject_ref,
            tenant_id=tenant_id,
            erased_at=erased_at,
            destroyed=destroyed,
            consent_record_sha256=consent_record_sha256,
            public_key=self.public_key_b64,
            signature=_b64(self._key.sign(payload)),
        )


def verify_receipt(*, receipt: ErasureReceipt, public_key_b64: str) -> bool:
    """True when ``receipt`` was signed by the holder of ``public_key_b64`` and is unaltered."""
    if receipt.public_key != public_key_b64:
        return False
    try:
        public_key = Ed25519PublicKey.from_public_bytes(_unb64(public_key_b64))
        public_key.verify(_unb64(receipt.signature), receipt.signed_payload())
    except (InvalidSignature, ValueError):
        return False
    return True
