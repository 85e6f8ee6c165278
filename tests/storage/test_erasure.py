"""Erasure: signed receipt, everything gone, crypto-shredding (an old database copy cannot be decrypted),
and no plaintext template bytes anywhere in the database or the data dir."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable

import pytest
from sqlalchemy import inspect, text
from storage_helpers import FakeClock, count_rows, enroll_one, new_tenant, raw_engine, template_bytes

from palmid.config import Settings
from palmid.errors import CryptoError, NotFoundError
from palmid.privacy.receipts import verify_receipt
from palmid.storage.crypto import PURPOSE_TEMPLATE, unseal
from palmid.storage.keystore import Keystore
from palmid.storage.repository import Store


def test_erasure_removes_everything_and_returns_a_signed_receipt(
    store: Store, settings: Settings, clock: FakeClock
) -> None:
    shop, stadium = new_tenant(store, "shop"), new_tenant(store, "stadium")
    enrolled = enroll_one(store, clock, tenant_id=shop.tenant_id)
    keep = enroll_one(store, clock, tenant_id=shop.tenant_id, seed=9)
    stadium_ref = store.ref_for(subject_id=enrolled.subject_id, tenant_id=stadium.tenant_id)
    store.register_verification_result(
        subject_id=enrolled.subject_id, tenant_id=shop.tenant_id, key_id=shop.key_id, matched=False
    )
    receipt = store.erase_subject(subject_id=enrolled.subject_id, tenant_id=shop.tenant_id)

    assert receipt.subject_ref == enrolled.subject_ref
    assert receipt.erased_at == clock.now
    assert set(receipt.destroyed) >= {"data_key:1", "templates:1", "consent_record:1", "pairwise_refs:2"}
    assert verify_receipt(receipt=receipt, public_key_b64=store.receipt_public_key_b64)
    forged = dataclasses.replace(receipt, subject_ref=keep.subject_ref)
    assert not verify_receipt(receipt=forged, public_key_b64=store.receipt_public_key_b64)

    assert [subject for subject, _ in store.iter_templates()] == [keep.subject_id]
    for ref, tenant in ((enrolled.subject_ref, shop), (stadium_ref, stadium)):
        with pytest.raises(NotFoundError):
            store.resolve_ref(subject_ref=ref, tenant_id=tenant.tenant_id)
    with pytest.raises(NotFoundError):
        store.load_template(subject_id=enrolled.subject_id)
    with pytest.raises(NotFoundError):
        store.erase_subject(subject_id=enrolled.subject_id, tenant_id=shop.tenant_id)
    engine = raw_engine(settings.effective_database_url)
    counts = {table: count_rows(engine, table) for table in ("consents", "subjects", "templates", "lockouts")}
    engine.dispose()
    assert counts == {"consents": 1, "subjects": 1, "templates": 1, "lockouts": 1}  # the key's lock row remains
    result = store.verify_audit()
    assert result.ok


def _snapshot_ciphertexts(settings: Settings) -> list[tuple[str, bytes]]:
    """What an attacker holding a backup of the main database has."""
    engine = raw_engine(settings.effective_database_url)
    with engine.connect() as connection:
        rows = [(str(s), bytes(c)) for s, c in connection.execute(text("SELECT subject_id, ciphertext FROM templates"))]
    engine.dispose()
    return rows


def _decrypt_with_live_keys(store: Store, settings: Settings, subject_id: str, sealed: bytes) -> bytes:
    """Decrypt a backed-up ciphertext with everything the live service still has (keystore + master key)."""
    keystore = Keystore(path=settings.data_dir / "keystore.db")
    try:
        wrapped = keystore.get(subject_id=subject_id)
    finally:
        keystore.close()
    provider = store._keyring.key_provider
    data_key = provider.unwrap_key(wrapped=wrapped, context=f"palmid-dek|{subject_id}".encode())
    return unseal(data_key=data_key, sealed=sealed, subject_id=subject_id, purpose=PURPOSE_TEMPLATE)


def test_backup_of_main_database_cannot_be_decrypted_after_erasure(
    store: Store, settings: Settings, clock: FakeClock
) -> None:
    shop = new_tenant(store)
    enrolled = enroll_one(store, clock, tenant_id=shop.tenant_id)
    backup = _snapshot_ciphertexts(settings)
    assert [subject for subject, _ in backup] == [enrolled.subject_id]
    subject_id, sealed = backup[0]
    # Positive control: before erasure the backup decrypts with the live keys.
    assert _decrypt_with_live_keys(store, settings, subject_id, sealed) == template_bytes()
    keystore = Keystore(path=settings.data_dir / "keystore.db")
    wrapped = keystore.get(subject_id=subject_id)
    keystore.close()
    store.erase_subject(subject_id=enrolled.subject_id, tenant_id=shop.tenant_id)
    with pytest.raises(CryptoError) as info:
        _decrypt_with_live_keys(store, settings, subject_id, sealed)
    assert info.value.code == "key_unavailable"
    # The wrapped data key is gone from every file (secure_delete, no write-ahead log for the keystore).
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert wrapped not in path.read_bytes(), path.name


def test_restored_sqlite_file_is_useless_for_the_erased_person(
    settings: Settings, open_store: Callable[..., Store], clock: FakeClock
) -> None:
    if settings.database_url is not None:
        pytest.skip("file-level backup applies to the SQLite backend (PostgreSQL: the row-level test above)")
    store = open_store()
    shop = new_tenant(store)
    erased = enroll_one(store, clock, tenant_id=shop.tenant_id)
    kept = enroll_one(store, clock, tenant_id=shop.tenant_id, seed=3)
    db_path = settings.data_dir / "palmid.db"
    backup_path = settings.data_dir.parent / "palmid-backup.db"
    with sqlite3.connect(db_path) as source, sqlite3.connect(backup_path) as target:
        source.backup(target)
    store.erase_subject(subject_id=erased.subject_id, tenant_id=shop.tenant_id)
    store.close()
    # The operator restores the old backup over the live database (same keys, same keystore).
    for suffix in ("", "-wal", "-shm"):
        (settings.data_dir / f"palmid.db{suffix}").unlink(missing_ok=True)
    backup_path.rename(db_path)
    restored = open_store()
    assert restored.load_template(subject_id=kept.subject_id) == template_bytes(3)
    with pytest.raises(CryptoError) as info:
        restored.load_template(subject_id=erased.subject_id)
    assert info.value.code == "key_unavailable"
    with pytest.raises(CryptoError):
        list(restored.iter_templates())  # fails closed rather than serving a half-restored gallery


def _database_values(settings: Settings) -> list[bytes]:
    engine = raw_engine(settings.effective_database_url)
    values: list[bytes] = []
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    values.append(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode())
    engine.dispose()
    return values


def test_no_plaintext_template_anywhere_after_a_flow(store: Store, settings: Settings, clock: FakeClock) -> None:
    shop, stadium = new_tenant(store, "shop"), new_tenant(store, "stadium")
    enrolled = [enroll_one(store, clock, tenant_id=shop.tenant_id, seed=seed) for seed in (1, 2, 3)]
    store.ref_for(subject_id=enrolled[0].subject_id, tenant_id=stadium.tenant_id)
    store.register_verification_result(
        subject_id=enrolled[1].subject_id, tenant_id=shop.tenant_id, key_id=shop.key_id, matched=True
    )
    store.erase_subject(subject_id=enrolled[2].subject_id, tenant_id=shop.tenant_id)
    needles = [template_bytes(seed) for seed in (1, 2, 3)]
    probes = [needle[start : start + 24] for needle in needles for start in (0, 300, 1000)]
    probes.append(b"PALMID-TEMPLATE-MARKER")
    files = [path for path in settings.data_dir.rglob("*") if path.is_file()]
    assert any(path.name == "keystore.db" for path in files)
    for path in files:
        content = path.read_bytes()
        for probe in probes:
            assert probe not in content, f"plaintext template bytes found in {path.name}"
    for value in _database_values(settings):
        for probe in probes:
            assert probe not in value
