"""Envelope encryption (AES-256-GCM) with per-subject data keys wrapped by a master key. Fails closed.

* Each subject gets a random 256-bit data key. Templates are sealed with it (AES-256-GCM, random 96-bit nonce);
  the associated data binds the ciphertext to the subject id and the purpose, so rows cannot be swapped.
* The data key is wrapped by a :class:`KeyProvider` (default :class:`LocalFileKeyProvider`: a 0600 key file in the
  data dir; a cloud KMS can implement the same two calls) and the wrapped key is kept in the separate keystore.
* Any missing, unreadable, insecure or wrong key raises :class:`palmid.errors.CryptoError`; nothing is ever
  returned or stored in plaintext instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from palmid.errors import CryptoError

KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_VERSION = b"\x01"
PURPOSE_TEMPLATE = "template"
PURPOSE_SEARCH_CODE = "search-code"
"""Purpose of a sealed search code; its associated data also names the code format (:func:`search_code_purpose`)."""


class KeyProvider(Protocol):
    """Wraps and unwraps data keys under a master key it never reveals (a local file or a cloud KMS)."""

    @property
    def key_id(self) -> str:
        """Stable, non-secret fingerprint of the master key."""
        ...

    def wrap_key(self, *, data_key: bytes, context: bytes) -> bytes:
        """Encrypt ``data_key`` bound to ``context``."""
        ...

    def unwrap_key(self, *, wrapped: bytes, context: bytes) -> bytes:
        """Decrypt a wrapped key; CryptoError if it was wrapped by another key or for another context."""
        ...


def read_secret_file(path: Path, *, length: int) -> bytes:
    """Read a 0600 secret file of ``length`` bytes. CryptoError when missing, unreadable, group/world accessible
    or of the wrong size."""
    try:
        info = path.stat()
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CryptoError(f"key file {path.name} is missing", code="key_unavailable") from exc
    except OSError as exc:
        raise CryptoError(f"key file {path.name} is unreadable", code="key_unavailable") from exc
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise CryptoError(f"key file {path.name} must have mode 0600", code="key_insecure")
    if len(data) != length:
        raise CryptoError(f"key file {path.name} has the wrong size", code="key_unavailable")
    return data


def create_secret_file(path: Path, *, length: int) -> bytes:
    """Create a new random secret file with mode 0600 (never overwrites an existing file)."""
    data = secrets.token_bytes(length)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise CryptoError(f"key file {path.name} already exists", code="key_unavailable") from exc
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return data


def fingerprint(secret: bytes, *, label: str) -> str:
    """Non-secret fingerprint of a key (to detect a wrong key file without revealing it)."""
    return hmac.new(secret, f"palmid-fingerprint|{label}".encode(), hashlib.sha256).hexdigest()[:32]


class LocalFileKeyProvider:
    """Master key in a local 0600 file (default ``<data_dir>/master.key``)."""

    def __init__(self, *, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise CryptoError("master key must be 32 bytes", code="key_unavailable")
        self._aead = AESGCM(key)
        self._key_id = fingerprint(key, label="master")

    @classmethod
    def load(cls, *, path: Path) -> LocalFileKeyProvider:
        """Load an existing key file; CryptoError if missing, unreadable or insecure."""
        return cls(key=read_secret_file(path, length=KEY_BYTES))

    @classmethod
    def create(cls, *, path: Path) -> LocalFileKeyProvider:
        """Create a new key file (mode 0600)."""
        return cls(key=create_secret_file(path, length=KEY_BYTES))

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap_key(self, *, data_key: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return SEALED_VERSION + nonce + self._aead.encrypt(nonce, data_key, b"palmid-wrap|" + context)

    def unwrap_key(self, *, wrapped: bytes, context: bytes) -> bytes:
        return _open(self._aead, wrapped, b"palmid-wrap|" + context)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def associated_data(*, subject_id: str, purpose: str) -> bytes:
    """What a ciphertext is bound to: swapping rows between subjects or purposes fails to decrypt."""
    return f"palmid/v1|{purpose}|{subject_id}".encode()


def search_code_purpose(code_format: str) -> str:
    """AEAD purpose of a search code of ``code_format``: never a template's, and a relabelled format fails."""
    return f"{PURPOSE_SEARCH_CODE}|{code_format}"


def seal(*, data_key: bytes, plaintext: bytes, subject_id: str, purpose: str) -> bytes:
    """AES-256-GCM encrypt ``plaintext`` under ``data_key`` bound to subject and purpose."""
    if len(data_key) != KEY_BYTES:
        raise CryptoError("data key must be 32 bytes", code="key_unavailable")
    nonce = secrets.token_bytes(NONCE_BYTES)
    aad = associated_data(subject_id=subject_id, purpose=purpose)
    return SEALED_VERSION + nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)


def unseal(*, data_key: bytes, sealed: bytes, subject_id: str, purpose: str) -> bytes:
    """Decrypt what :func:`seal` produced; CryptoError(decrypt_failed) on any tampering or wrong key."""
    if len(data_key) != KEY_BYTES:
        raise CryptoError("data key must be 32 bytes", code="key_unavailable")
    return _open(AESGCM(data_key), sealed, associated_data(subject_id=subject_id, purpose=purpose))


def _open(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != SEALED_VERSION:
        raise CryptoError("ciphertext is malformed", code="decrypt_failed")
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return aead.decrypt(nonce, body, aad)
    except InvalidTag as exc:
        raise CryptoError("ciphertext failed authentication", code="decrypt_failed") from exc
