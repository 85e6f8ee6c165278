"""Envelope encryption: round trip, tamper detection, binding to subject/purpose, fail-closed key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from palmid.errors import CryptoError
from palmid.storage.crypto import (
    LocalFileKeyProvider,
    create_secret_file,
    new_data_key,
    read_secret_file,
    seal,
    unseal,
)

PLAINTEXT = b"template bytes \x00\x01\x02" * 40


def test_seal_round_trip_and_ciphertext_hides_plaintext() -> None:
    key = new_data_key()
    sealed = seal(data_key=key, plaintext=PLAINTEXT, subject_id="s1", purpose="template")
    assert PLAINTEXT not in sealed
    assert PLAINTEXT[:16] not in sealed
    assert unseal(data_key=key, sealed=sealed, subject_id="s1", purpose="template") == PLAINTEXT
    # A fresh nonce every time: the same plaintext never gives the same ciphertext.
    assert seal(data_key=key, plaintext=PLAINTEXT, subject_id="s1", purpose="template") != sealed


@pytest.mark.parametrize("position", [0, 5, 13, 40, -1])
def test_flipped_bit_anywhere_fails_closed(position: int) -> None:
    key = new_data_key()
    sealed = bytearray(seal(data_key=key, plaintext=PLAINTEXT, subject_id="s1", purpose="template"))
    sealed[position] ^= 0x01
    with pytest.raises(CryptoError) as info:
        unseal(data_key=key, sealed=bytes(sealed), subject_id="s1", purpose="template")
    assert info.value.code == "decrypt_failed"


def test_wrong_key_fails_closed() -> None:
    sealed = seal(data_key=new_data_key(), plaintext=PLAINTEXT, subject_id="s1", purpose="template")
    with pytest.raises(CryptoError, match="authentication"):
        unseal(data_key=new_data_key(), sealed=sealed, subject_id="s1", purpose="template")


def test_ciphertext_is_bound_to_subject_and_purpose() -> None:
    key = new_data_key()
    sealed = seal(data_key=key, plaintext=PLAINTEXT, subject_id="s1", purpose="template")
    with pytest.raises(CryptoError):
        unseal(data_key=key, sealed=sealed, subject_id="s2", purpose="template")
    with pytest.raises(CryptoError):
        unseal(data_key=key, sealed=sealed, subject_id="s1", purpose="attributes")


def test_truncated_ciphertext_fails_closed() -> None:
    with pytest.raises(CryptoError):
        unseal(data_key=new_data_key(), sealed=b"\x01short", subject_id="s1", purpose="template")


def test_key_file_is_created_0600_and_wraps_bound_to_context(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    provider = LocalFileKeyProvider.create(path=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data_key = new_data_key()
    wrapped = provider.wrap_key(data_key=data_key, context=b"subject-a")
    assert data_key not in wrapped
    reloaded = LocalFileKeyProvider.load(path=path)
    assert reloaded.key_id == provider.key_id
    assert reloaded.unwrap_key(wrapped=wrapped, context=b"subject-a") == data_key
    with pytest.raises(CryptoError):
        reloaded.unwrap_key(wrapped=wrapped, context=b"subject-b")


def test_wrong_master_key_cannot_unwrap(tmp_path: Path) -> None:
    first = LocalFileKeyProvider.create(path=tmp_path / "a.key")
    second = LocalFileKeyProvider.create(path=tmp_path / "b.key")
    wrapped = first.wrap_key(data_key=new_data_key(), context=b"s")
    assert first.key_id != second.key_id
    with pytest.raises(CryptoError) as info:
        second.unwrap_key(wrapped=wrapped, context=b"s")
    assert info.value.code == "decrypt_failed"


def test_missing_key_file_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(CryptoError) as info:
        LocalFileKeyProvider.load(path=tmp_path / "absent.key")
    assert info.value.code == "key_unavailable"


def test_group_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_secret_file(path, length=32)
    os.chmod(path, 0o640)
    with pytest.raises(CryptoError) as info:
        read_secret_file(path, length=32)
    assert info.value.code == "key_insecure"


def test_truncated_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_secret_file(path, length=32)
    path.write_bytes(b"short")
    with pytest.raises(CryptoError):
        LocalFileKeyProvider.load(path=path)


def test_create_never_overwrites_an_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    original = create_secret_file(path, length=32)
    with pytest.raises(CryptoError):
        create_secret_file(path, length=32)
    assert path.read_bytes() == original
