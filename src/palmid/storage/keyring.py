"""The service's secrets in the data dir, loaded (or created on first open) and checked against the database.

Files (all mode 0600): ``master.key`` (wraps data keys, unless another KeyProvider is given), ``ref_secret.key``
(pairwise refs) and ``receipt_signing.key`` (Ed25519 seed for erasure receipts). The first open of a database
records a fingerprint of each in ``store_meta``; later opens refuse (CryptoError) when a file is missing or differs,
instead of silently creating a new key that could not decrypt the existing data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from palmid.errors import CryptoError
from palmid.privacy.receipts import ReceiptSigner
from palmid.storage.crypto import (
    KEY_BYTES,
    KeyProvider,
    LocalFileKeyProvider,
    create_secret_file,
    fingerprint,
    read_secret_file,
)
from palmid.storage.models import StoreMeta

MASTER_KEY_FILENAME = "master.key"
REF_SECRET_FILENAME = "ref_secret.key"  # noqa: S105 (a file name, not a secret)
SIGNING_KEY_FILENAME = "receipt_signing.key"


@dataclass(frozen=True, kw_only=True)
class Keyring:
    key_provider: KeyProvider
    ref_secret: bytes
    signer: ReceiptSigner


def _load_or_create(path: Path, *, known: bool) -> bytes:
    if known or path.exists():
        return read_secret_file(path, length=KEY_BYTES)
    return create_secret_file(path, length=KEY_BYTES)


def _check(session: Session, *, name: str, value: str, known: dict[str, str]) -> None:
    recorded = known.get(name)
    if recorded is None:
        session.add(StoreMeta(name=name, value=value))
        return
    if recorded != value:
        raise CryptoError(f"{name} does not match the key this database was created with", code="key_mismatch")


def open_keyring(session: Session, *, data_dir: Path, key_provider: KeyProvider | None) -> Keyring:
    """Load the keys (creating them only for a database that has none recorded) inside ``session``'s transaction."""
    known = {row.name: row.value for row in session.scalars(select(StoreMeta))}
    if key_provider is None:
        master_path = data_dir / MASTER_KEY_FILENAME
        if "master_key_id" in known or master_path.exists():
            key_provider = LocalFileKeyProvider.load(path=master_path)
        else:
            key_provider = LocalFileKeyProvider.create(path=master_path)
    ref_secret = _load_or_create(data_dir / REF_SECRET_FILENAME, known="ref_secret_id" in known)
    signing_seed = _load_or_create(data_dir / SIGNING_KEY_FILENAME, known="receipt_public_key" in known)
    signer = ReceiptSigner(private_key_bytes=signing_seed)
    _check(session, name="master_key_id", value=key_provider.key_id, known=known)
    _check(session, name="ref_secret_id", value=fingerprint(ref_secret, label="refs"), known=known)
    _check(session, name="receipt_public_key", value=signer.public_key_b64, known=known)
    return Keyring(key_provider=key_provider, ref_secret=ref_secret, signer=signer)
