"""Batch template reads (the 1:N index's re-ranking fetch): enrolled only, erased absent, failures closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from storage_helpers import FakeClock, enroll_one, new_tenant, raw_engine, template_bytes

from palmid.config import Settings
from palmid.errors import CryptoError
from palmid.storage import template_reads
from palmid.storage.keystore import KEYSTORE_FILENAME, Keystore
from palmid.storage.repository import Store


def test_load_templates_returns_the_enrolled_templates_by_id(store: Store, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    a = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=1)
    b = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=2)
    enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=3)  # not asked for

    loaded = store.load_templates(subject_ids=[b.subject_id, "0" * 32, a.subject_id, b.subject_id])

    assert loaded == {a.subject_id: template_bytes(1), b.subject_id: template_bytes(2)}
    assert store.load_templates(subject_ids=[]) == {}


def test_erased_subjects_are_absent(store: Store, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    kept = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=1)
    erased = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=2)

    store.erase_subject(subject_id=erased.subject_id, tenant_id=tenant.tenant_id)

    assert store.load_templates(subject_ids=[kept.subject_id, erased.subject_id]) == {
        kept.subject_id: template_bytes(1)
    }


def test_large_requests_are_split_into_batches(store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_reads, "LOAD_BATCH", 2)
    tenant = new_tenant(store)
    enrolled = [enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=seed) for seed in range(5)]

    loaded = store.load_templates(subject_ids=[subject.subject_id for subject in enrolled])

    assert loaded == {subject.subject_id: template_bytes(seed) for seed, subject in enumerate(enrolled)}


def test_a_subject_erased_between_the_row_query_and_the_key_read_is_absent(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Erasure deletes the rows, then destroys the key: a read that saw the rows but finds no key is not an error."""
    tenant = new_tenant(store)
    kept = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=1)
    racing = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=2)
    original = Keystore.get_many

    def erase_first(self: Keystore, *, subject_ids: list[str]) -> dict[str, bytes]:
        monkeypatch.setattr(Keystore, "get_many", original)
        store.erase_subject(subject_id=racing.subject_id, tenant_id=tenant.tenant_id)
        return original(self, subject_ids=subject_ids)

    monkeypatch.setattr(Keystore, "get_many", erase_first)

    assert store.load_templates(subject_ids=[kept.subject_id, racing.subject_id]) == {
        kept.subject_id: template_bytes(1)
    }


def test_a_stored_template_without_its_key_fails_closed(store: Store, clock: FakeClock, settings: Settings) -> None:
    tenant = new_tenant(store)
    subject = enroll_one(store, clock, tenant_id=tenant.tenant_id)
    keystore = Keystore(path=settings.data_dir / KEYSTORE_FILENAME)
    try:
        assert keystore.destroy(subject_ids=[subject.subject_id]) == 1
    finally:
        keystore.close()

    with pytest.raises(CryptoError) as caught:
        store.load_templates(subject_ids=[subject.subject_id])
    assert caught.value.code == "key_unavailable"


def test_a_tampered_ciphertext_fails_closed(store: Store, clock: FakeClock, settings: Settings) -> None:
    tenant = new_tenant(store)
    victim = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=1)
    other = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=2)
    engine = raw_engine(settings.effective_database_url)
    try:
        with engine.begin() as connection:  # move the other subject's ciphertext under the victim's id
            sealed = connection.execute(
                text("SELECT ciphertext FROM templates WHERE subject_id = :s"), {"s": other.subject_id}
            ).scalar_one()
            connection.execute(
                text("UPDATE templates SET ciphertext = :c WHERE subject_id = :s"),
                {"c": sealed, "s": victim.subject_id},
            )
    finally:
        engine.dispose()

    with pytest.raises(CryptoError) as caught:
        store.load_templates(subject_ids=[other.subject_id, victim.subject_id])
    assert caught.value.code == "decrypt_failed"


def test_bulk_reads_warm_the_keystore_file_first(
    store: Store, clock: FakeClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = new_tenant(store)
    enroll_one(store, clock, tenant_id=tenant.tenant_id)
    warmed: list[int] = []
    original = Keystore.warm_cache
    monkeypatch.setattr(Keystore, "warm_cache", lambda self: (warmed.append(1), original(self))[-1])
    assert len(list(store.iter_templates())) == 1
    assert sum(len(batch) for batch in store.search_codes.iter_batches()) <= 1
    assert len(warmed) == 2  # once per bulk read, before any key lookup


def test_warming_reads_the_file_and_tolerates_its_absence(tmp_path: Path) -> None:
    keystore = Keystore(path=tmp_path / KEYSTORE_FILENAME)
    try:
        keystore.warm_cache()  # the real file: read through without error
    finally:
        keystore.close()
    (tmp_path / KEYSTORE_FILENAME).unlink()
    keystore.warm_cache()  # gone: nothing to warm, and no error (the lookups report a missing keystore)
